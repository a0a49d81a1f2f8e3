//! Scenario 12, dashboard pages at scale: how long each page takes to render on a
//! docket holding 1,000,000 scheduled and 100,000 queued tasks (no worker, so they
//! stay), against the same page on a small docket (10,000 of each: every list fills
//! its page of 50, and a filter or search looks through its whole budget of 5,000) and
//! on an empty one, calling the dashboard's router without a socket. Every list is read
//! a page at a time and every scan is bounded, so the large docket's pages should cost
//! what the small one's do.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use docket::dashboard::axum::Router;
use docket::dashboard::axum::body::Body;
use docket::dashboard::axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use super::{Bench, TRACKED};
use crate::child::noop_at;
use crate::report::{Figure, Outcome};
use crate::stats::Summary;

/// Renders of each page per docket.
const RENDERS: usize = 20;

/// The pages measured: name, path.
const PAGES: [(&str, &str); 6] = [
    ("overview", "/"),
    ("scheduled", "/tasks?list=scheduled"),
    ("queued", "/tasks?list=queued"),
    (
        "queued filtered by argument",
        "/tasks?list=queued&q=nothing-matches",
    ),
    ("search", "/search?q=nothing-matches"),
    ("run by key", "/run?key=KEY"),
];

/// Milliseconds to render `path`, once per render.
async fn render_times(router: &Router, path: &str) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(RENDERS);
    for _ in 0..RENDERS {
        let started = Instant::now();
        let response = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty())?)
            .await?;
        let status = response.status();
        let body =
            docket::dashboard::axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        if status != StatusCode::OK {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(times)
}

/// Adds `tasks` no-ops due at `due` (state kept, so each has a record) with
/// `add_many` ×1000; the key of the last.
async fn fill(docket: &docket::Docket, tasks: usize, due: SystemTime) -> Result<String> {
    let mut left = tasks;
    let mut last = String::new();
    while left > 0 {
        let now = left.min(1000);
        let placed = docket.add_many((0..now).map(|_| noop_at(due))).await?;
        last = placed
            .last()
            .map(|e| e.key().to_owned())
            .unwrap_or_default();
        left -= now;
    }
    Ok(last)
}

pub(crate) async fn dashboard(bench: &mut Bench) -> Result<Outcome> {
    bench.clean().await?;
    let (scheduled, queued) = (bench.n(1_000_000), bench.n(100_000));
    let small = bench.n(10_000);
    let names = [
        bench.fresh_name("dashboard-empty"),
        bench.fresh_name("dashboard-small"),
        bench.fresh_name("dashboard-full"),
    ];
    let later = SystemTime::now() + Duration::from_hours(2);
    let mut routers = Vec::new();
    let mut filled_in = Duration::ZERO;
    for (name, (future, due)) in names
        .iter()
        .zip([(0, 1), (small, small), (scheduled, queued)])
    {
        let docket = bench.producer(name, TRACKED).await?;
        let filling = Instant::now();
        fill(&docket, future, later)
            .await
            .with_context(|| format!("scheduling {future} tasks"))?;
        // A second ago: a due time is rounded up to the next millisecond, so one of
        // `now` can still be ahead of the server's clock, and parked for that moment.
        let key = fill(&docket, due, SystemTime::now() - Duration::from_secs(1))
            .await
            .with_context(|| format!("queueing {due} tasks"))?;
        filled_in = filling.elapsed();
        let counts = docket.counts().await.context("counting")?;
        if counts.scheduled != future || counts.queued != due {
            bail!("{name} holds {counts:?}, not {future} scheduled and {due} queued");
        }
        routers.push((docket::dashboard::router(docket), key));
    }
    let scenario = "12 dashboard";
    let mut figures = Vec::new();
    let mut details = serde_json::Map::new();
    for (page, path) in PAGES {
        let mut medians = Vec::new();
        for (router, key) in &routers {
            let path = path.replace("KEY", key);
            let times = render_times(router, &path)
                .await
                .with_context(|| format!("rendering {path}"))?;
            medians.push(Summary::of(&times));
        }
        let (empty_ms, small_ms, full_ms) = (&medians[0], &medians[1], &medians[2]);
        let key = page.replace(' ', "_");
        figures.push(Figure::new(
            scenario,
            format!("dashboard.{key}.empty_ms"),
            format!("{page} page, empty docket"),
            "ms",
            empty_ms.clone(),
        ));
        figures.push(Figure::new(
            scenario,
            format!("dashboard.{key}.full_ms"),
            format!("{page} page, {scheduled} scheduled + {queued} queued"),
            "ms",
            full_ms.clone(),
        ));
        let ratio = full_ms.median / small_ms.median.max(0.001);
        figures.push(
            Figure::new(
                scenario,
                format!("dashboard.{key}.ratio"),
                format!("{page} page, large docket ÷ {small} + {small} docket"),
                "×",
                Summary::of(&[ratio]),
            )
            .at_most(1.5, "≤ 1.5× small"),
        );
        details.insert(
            page.to_owned(),
            json!({ "path": path, "empty_ms": empty_ms, "small_ms": small_ms, "full_ms": full_ms }),
        );
    }
    bench.clean().await?;
    Ok(Outcome {
        figures,
        details: json!({
            "scheduled": scheduled,
            "queued": queued,
            "small": small,
            "renders_per_page": RENDERS,
            "filled_in_s": filled_in.as_secs_f64(),
            "pages": details,
            "method": "the dashboard's router (docket::dashboard::router) called with \
                       tower's oneshot, no socket, on the same Redis: median of 20 renders \
                       of each page on an empty docket (one queued task), a small one \
                       and a large one holding scheduled and queued no-ops (state kept, \
                       no worker)",
        }),
    })
}
