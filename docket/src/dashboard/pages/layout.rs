//! The frame around every page, the assets, and the small pieces pages share: times,
//! states, arguments, pagination.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::super::App;
use super::super::access::Proof;
use crate::model::{ExecutionRecord, ExecutionState};

/// Where the dashboard is mounted.
#[derive(Debug, Clone)]
pub(in crate::dashboard) struct Base {
    /// The mount path ending in `/`: every link is relative to it.
    pub href: String,
    /// The overview's path: the mount path itself (a router nested at `/ops` answers
    /// `/ops`, not `/ops/`), or `/`.
    pub home: String,
}

impl Base {
    /// The base of a request for `full` (the path the client asked for) that the
    /// dashboard's router saw as `inner`.
    pub(in crate::dashboard) fn of(full: &str, inner: &str) -> Self {
        let mount = match full.strip_suffix(inner) {
            Some(mount) => mount,
            // A router nested at `/ops` sees `/ops` as `/`.
            None if inner == "/" => full,
            None => "",
        }
        .trim_end_matches('/');
        Self {
            href: format!("{mount}/"),
            home: if mount.is_empty() {
                "/".to_owned()
            } else {
                mount.to_owned()
            },
        }
    }
}

/// What the frame of a page knows about the dashboard and the operator.
pub(in crate::dashboard) struct Chrome<'a> {
    app: &'a App,
    base: &'a Base,
    title: String,
    /// The operator may act (signed in, or a bearer token).
    pub acting: bool,
    /// The events that refresh the page as they come, if it is live.
    events: Option<String>,
}

impl<'a> Chrome<'a> {
    pub(in crate::dashboard) fn new(
        app: &'a App,
        base: &'a Base,
        headers: &HeaderMap,
        title: &str,
    ) -> Self {
        Self {
            app,
            base,
            title: title.to_owned(),
            acting: app.access.proof(headers) != Proof::None,
            events: None,
        }
    }

    /// Makes the page live: it refreshes itself as `events` (a path of the
    /// dashboard's) says something changed.
    #[must_use]
    pub(in crate::dashboard) fn live(mut self, events: impl Into<String>) -> Self {
        self.events = Some(events.into());
        self
    }

    /// The hidden field every action form carries.
    pub(in crate::dashboard) fn csrf(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.app.access.csrf()); }
    }

    /// A page: the frame around `body`.
    #[allow(clippy::needless_pass_by_value)] // Callers build the body for this call.
    pub(in crate::dashboard) fn page(&self, body: Markup) -> Markup {
        let docket = self.app.docket.name();
        let server = self.app.docket.server().unwrap_or_else(|| {
            if self.app.docket.url().starts_with("memory://") {
                "in memory".to_owned()
            } else {
                "Redis".to_owned()
            }
        });
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    base href=(self.base.href);
                    title { (self.title) " · " (docket) " · docket" }
                    link rel="stylesheet" href="assets/dashboard.css";
                    script src="assets/dashboard.js" defer {}
                }
                body {
                    header.top {
                        a.brand href=(self.base.home) { "docket" }
                        span.docket title="docket name" { (docket) }
                        span.server { (server) }
                        nav {
                            a href=(self.base.home) { "Overview" }
                            a href="tasks?list=queued" { "Queued" }
                            a href="tasks?list=scheduled" { "Scheduled" }
                            a href="tasks?list=running" { "Running" }
                            a href="dead-letters" { "Dead letters" }
                            a href="workers" { "Workers" }
                            a href="strikes" { "Strikes" }
                            a href="schedules" { "Schedules" }
                        }
                        form.search action="search" method="get" role="search" {
                            input type="search" name="q" placeholder="Key, task or argument value" aria-label="Search";
                        }
                        div.who {
                            @if self.acting {
                                form action="logout" method="post" { button.link type="submit" { "Sign out" } }
                            } @else if self.app.access.actions_enabled() {
                                a href="login" { "Sign in to act" }
                            } @else if self.app.access.forced_read_only() {
                                span.badge { "read-only" }
                            } @else {
                                span.badge title="start the dashboard with --auth-token to act" { "read-only: no token" }
                            }
                        }
                    }
                    main #main data-events=[self.events.as_deref()] { (body) }
                }
            }
        }
    }
}

/// An HTML response.
pub(in crate::dashboard) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A page that says what went wrong.
pub(in crate::dashboard) fn problem(
    chrome: &Chrome<'_>,
    status: StatusCode,
    what: &str,
) -> Response {
    html(
        status,
        chrome.page(html! {
            h1 { (status.canonical_reason().unwrap_or("Error")) }
            p.problem { (what) }
        }),
    )
}

pub(in crate::dashboard) async fn not_found(
    AxumState(app): super::super::State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Not found");
    problem(&chrome, StatusCode::NOT_FOUND, "There is no such page.")
}

const SCRIPT: &str = include_str!("../assets/dashboard.js");
const STYLE: &str = include_str!("../assets/dashboard.css");

pub(in crate::dashboard) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(in crate::dashboard) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The login form.
pub(in crate::dashboard) fn login(_app: &App, error: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        p { "Give the dashboard's token (" code { "--auth-token" } " or " code { "DOCKET_DASHBOARD_TOKEN" } ") to act on tasks." }
        @if let Some(error) = error { p.problem { (error) } }
        form.login action="login" method="post" {
            label { "Token " input type="password" name="token" autocomplete="current-password" required; }
            button type="submit" { "Sign in" }
        }
    }
}

/// A moment as UTC text, to the second.
pub(in crate::dashboard) fn timestamp(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// A moment relative to `now`: `in 5m 3s`, `12s ago`.
pub(in crate::dashboard) fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) if ahead >= Duration::from_secs(1) => format!("in {}", span(ahead)),
        Ok(_) => "now".to_owned(),
        Err(behind) => {
            let behind = behind.duration();
            if behind < Duration::from_secs(1) {
                "now".to_owned()
            } else {
                format!("{} ago", span(behind))
            }
        }
    }
}

/// A length of time in its two largest units: `3d 4h`, `5m 3s`, `12s`.
pub(in crate::dashboard) fn span(length: Duration) -> String {
    let seconds = length.as_secs();
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m {secs}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// A moment shown relative to now, with the exact time on hover.
pub(in crate::dashboard) fn moment(at: SystemTime, now: SystemTime) -> Markup {
    html! { time datetime=(timestamp(at)) title=(timestamp(at)) { (relative(at, now)) } }
}

/// A state as a coloured badge.
pub(in crate::dashboard) fn state_badge(state: ExecutionState) -> Markup {
    let name = state.to_string().to_lowercase();
    html! { span class={ "state state-" (name) } { (name) } }
}

/// Arguments shortened to fit a table cell (the whole of them on hover).
pub(in crate::dashboard) fn short_args(args: &str) -> Markup {
    const SHOWN: usize = 80;
    let short: String = args.chars().take(SHOWN).collect();
    let cut = short.len() < args.len();
    html! { code.args title=(args) { (short) @if cut { "…" } } }
}

/// Arguments as indented JSON (as given, when they are not JSON).
pub(in crate::dashboard) fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// A link to a run's page.
pub(in crate::dashboard) fn run_link(key: &str) -> Markup {
    html! { a.key href={ "run?key=" (encode(key)) } { (key) } }
}

/// `text` encoded for a URL's query.
pub(in crate::dashboard) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// A number with thousands separated: `1 000 000`.
pub(in crate::dashboard) fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(digit);
    }
    out
}

/// The next and first page links of a listing.
pub(in crate::dashboard) fn pagination(first: &str, next: Option<String>) -> Markup {
    html! {
        nav.pages {
            a href=(first) { "First page" }
            @if let Some(next) = next { a.next href=(next) { "Next page →" } }
        }
    }
}

/// The row of a live task in a table.
pub(in crate::dashboard) fn task_row(
    record: &ExecutionRecord,
    now: SystemTime,
    selectable: bool,
) -> Markup {
    let message = &record.message;
    html! {
        tr data-key=(message.key) {
            @if selectable {
                td.select { input type="checkbox" name="key" value=(message.key) form="bulk" aria-label={ "select " (message.key) }; }
            }
            td { (run_link(&message.key)) }
            td.task { (message.function) }
            td { (short_args(&message.args)) }
            td { (state_badge(record.state)) }
            td { (moment(message.when, now)) }
            td.num { (message.attempt) }
            td { (record.worker.as_deref().unwrap_or("")) }
        }
    }
}

/// The head of a table of tasks.
pub(in crate::dashboard) fn task_head(selectable: bool) -> Markup {
    html! {
        thead { tr {
            @if selectable { th.select { input type="checkbox" data-select-all aria-label="select all"; } }
            th { "Key" } th { "Task" } th { "Arguments" } th { "State" } th { "Due" } th { "Attempt" } th { "Worker" }
        } }
    }
}

/// Raw markup for an inline SVG (maud escapes text; SVG paths are built from numbers).
pub(in crate::dashboard) fn svg(markup: String) -> PreEscaped<String> {
    PreEscaped(markup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(relative(now + Duration::from_secs(65), now), "in 1m 5s");
        assert_eq!(relative(now - Duration::from_secs(7_300), now), "2h 1m ago");
        assert_eq!(relative(now, now), "now");
        assert_eq!(span(Duration::from_hours(25)), "1d 1h");
    }

    #[test]
    fn links_are_relative_to_where_the_dashboard_is_mounted() {
        for (full, inner, href, home) in [
            ("/", "/", "/", "/"),
            ("/tasks", "/tasks", "/", "/"),
            ("/ops/docket", "/", "/ops/docket/", "/ops/docket"),
            ("/ops/docket/run", "/run", "/ops/docket/", "/ops/docket"),
        ] {
            let base = Base::of(full, inner);
            assert_eq!(
                (base.href.as_str(), base.home.as_str()),
                (href, home),
                "{full}"
            );
        }
    }

    #[test]
    fn query_values_are_encoded_and_counts_grouped() {
        assert_eq!(encode("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(count(1_000_000), "1\u{202f}000\u{202f}000");
        assert_eq!(count(999), "999");
    }
}
