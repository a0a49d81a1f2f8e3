//! The overview: how much is waiting, how fast runs end, and who is working — from
//! counts the docket keeps and the activity workers report with their heartbeats, so
//! it needs no Prometheus.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, Base, Chrome};
use crate::dashboard::{App, State};
use crate::model::{Activity, ActivityInterval, Listing};

/// How far back the chart reaches.
const CHART_SPAN: Duration = Duration::from_mins(10);

/// The length of one bar of the chart: the history's interval.
const BAR: Duration = Duration::from_secs(5);

pub(in crate::dashboard) async fn page(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Overview").live("events");
    match render(&app).await {
        Ok(body) => layout::html(StatusCode::OK, chrome.page(body)),
        Err(error) => layout::problem(&chrome, StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}

async fn render(app: &App) -> crate::Result<Markup> {
    let docket = &app.docket;
    let now = docket.now().await?;
    let counts = docket.counts().await?;
    let oldest = docket
        .page(Listing::Queued, None, 1)
        .await?
        .records
        .into_iter()
        .next();
    let workers = docket.workers().await?;
    let dead = docket.dead_letters().await?.len();
    let history = docket
        .activity(now.checked_sub(CHART_SPAN).unwrap_or(now))
        .await?;
    let last_minute = rates(&history, now, Duration::from_mins(1));
    Ok(html! {
        h1 { "Overview" }
        div.cards {
            (card("Queued", &layout::count(counts.queued), "tasks?list=queued"))
            (card("Scheduled", &layout::count(counts.scheduled), "tasks?list=scheduled"))
            (card("Running", &layout::count(counts.running), "tasks?list=running"))
            (card("Dead letters", &layout::count(dead), "dead-letters"))
            (card("Workers", &layout::count(workers.len()), "workers"))
            (card("Oldest queued", &oldest.map_or_else(|| "none".to_owned(), |record| {
                layout::span(now.duration_since(record.message.when).unwrap_or_default())
            }), "tasks?list=queued"))
        }
        section.rates {
            h2 { "Last minute" }
            div.cards {
                (rate_card("Completed", last_minute.succeeded, "ok"))
                (rate_card("Failed", last_minute.failed, "bad"))
                (rate_card("Retried", last_minute.retried, "warn"))
            }
        }
        section.chart {
            h2 { "Runs ended, last " (CHART_SPAN.as_secs() / 60) " minutes" }
            (chart(&history, now))
            p.legend {
                span.key-ok { "completed" } " · " span.key-bad { "failed" } " · " span.key-warn { "retried" }
                " · per 5-second interval, as workers report with their heartbeats"
            }
        }
    })
}

fn card(label: &str, value: &str, href: &str) -> Markup {
    html! { a.card href=(href) { span.label { (label) } span.value { (value) } } }
}

fn rate_card(label: &str, per_second: f64, tone: &str) -> Markup {
    html! {
        div class={ "card " (tone) } {
            span.label { (label) }
            span.value { (format!("{per_second:.1}")) small { "/s" } }
        }
    }
}

/// Runs ended per second over the last `span`.
#[allow(clippy::cast_precision_loss)]
fn rates(history: &[ActivityInterval], now: SystemTime, span: Duration) -> RatePerSecond {
    let since = now.checked_sub(span).unwrap_or(now);
    let mut total = Activity::default();
    for interval in history.iter().filter(|i| i.start + BAR > since) {
        total.add(interval.activity);
    }
    let seconds = span.as_secs_f64();
    RatePerSecond {
        succeeded: total.succeeded as f64 / seconds,
        failed: total.failed as f64 / seconds,
        retried: total.retried as f64 / seconds,
    }
}

struct RatePerSecond {
    succeeded: f64,
    failed: f64,
    retried: f64,
}

/// A stacked bar per interval, drawn as SVG from numbers only.
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn chart(history: &[ActivityInterval], now: SystemTime) -> Markup {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 160.0;
    let bars = (CHART_SPAN.as_secs() / BAR.as_secs()) as usize;
    let start = now.checked_sub(CHART_SPAN).unwrap_or(now);
    let mut slots = vec![Activity::default(); bars];
    for interval in history {
        if let Ok(offset) = interval.start.duration_since(start) {
            let slot = (offset.as_secs() / BAR.as_secs()) as usize;
            if let Some(slot) = slots.get_mut(slot) {
                slot.add(interval.activity);
            }
        }
    }
    let peak = slots
        .iter()
        .map(|a| a.succeeded + a.failed + a.retried)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let width = WIDTH / bars as f64;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" aria-label="runs ended per interval">"#
    );
    for (i, slot) in slots.iter().enumerate() {
        let x = i as f64 * width;
        let mut y = HEIGHT;
        for (count, class) in [
            (slot.succeeded, "ok"),
            (slot.failed, "bad"),
            (slot.retried, "warn"),
        ] {
            if count == 0 {
                continue;
            }
            let height = count as f64 / peak * (HEIGHT - 4.0);
            y -= height;
            let _ = write!(
                svg,
                r#"<rect class="{class}" x="{x:.2}" y="{y:.2}" width="{:.2}" height="{height:.2}"><title>{count}</title></rect>"#,
                (width - 1.0).max(1.0)
            );
        }
    }
    svg.push_str("</svg>");
    html! {
        p.peak { "Tallest bar: " (format!("{peak:.0}")) " runs in 5 s" }
        (layout::svg(svg))
    }
}
