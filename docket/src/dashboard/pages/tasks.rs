//! Queued, scheduled and running tasks, a page at a time, filtered by task or argument
//! value; and the search box's answers.

use axum::Extension;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Base, Chrome};
use crate::dashboard::scan::{self, Filter, Found, Position, SCAN_BUDGET};
use crate::dashboard::{App, State};
use crate::model::{ExecutionRecord, Listing};

/// Tasks a page shows.
pub(in crate::dashboard) const PAGE_SIZE: usize = 50;

#[derive(Debug, Deserialize, Default)]
pub(in crate::dashboard) struct TasksQuery {
    list: Option<String>,
    after: Option<String>,
    task: Option<String>,
    q: Option<String>,
}

/// A filter from a form's optional fields (empty ones are none).
pub(in crate::dashboard) fn filter_of(task: Option<&str>, value: Option<&str>) -> Filter {
    let given = |text: Option<&str>| {
        text.map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    Filter {
        task: given(task),
        value: given(value),
        either: false,
    }
}

pub(in crate::dashboard) async fn page(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Query(query): Query<TasksQuery>,
) -> Response {
    let listing = query
        .list
        .as_deref()
        .map_or(Some(Listing::Queued), Listing::from_name);
    let Some(listing) = listing else {
        let chrome = Chrome::new(&app, &base, &headers, "Tasks");
        let list = query.list.unwrap_or_default();
        return layout::problem(
            &chrome,
            StatusCode::BAD_REQUEST,
            &format!("unknown list `{list}`: use queued, scheduled or running"),
        );
    };
    let title = format!("{} tasks", capitalised(listing.as_str()));
    let chrome = Chrome::new(&app, &base, &headers, &title).live("events");
    match render(&app, &chrome, listing, &query).await {
        Ok(body) => layout::html(StatusCode::OK, chrome.page(body)),
        Err(error) => layout::problem(&chrome, StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn render(
    app: &App,
    chrome: &Chrome<'_>,
    listing: Listing,
    query: &TasksQuery,
) -> crate::Result<Markup> {
    let docket = &app.docket;
    let (counts, now) = (docket.counts().await?, docket.now().await?);
    let filter = filter_of(query.task.as_deref(), query.q.as_deref());
    let list = listing.as_str();
    let filter_query = format!(
        "{}{}",
        filter
            .task
            .as_ref()
            .map(|t| format!("&task={}", layout::encode(t)))
            .unwrap_or_default(),
        filter
            .value
            .as_ref()
            .map(|v| format!("&q={}", layout::encode(v)))
            .unwrap_or_default(),
    );
    let first = format!("tasks?list={list}{filter_query}");
    let (records, next, looked) = if filter.is_empty() {
        let page = docket
            .page(listing, query.after.as_deref(), PAGE_SIZE)
            .await?;
        let next = page
            .next
            .map(|next| format!("{first}&after={}", layout::encode(&next)));
        (page.records, next, None)
    } else {
        let from = query.after.as_deref().and_then(Position::from_text);
        let Found {
            records,
            looked,
            resume,
        } = scan::scan(docket, &[listing], &filter, from, PAGE_SIZE, SCAN_BUDGET).await?;
        let next = resume.map(|at| format!("{first}&after={}", layout::encode(&at.to_text())));
        (records, next, Some(looked))
    };
    let total = counts.of(listing);
    Ok(html! {
        h1 { (capitalised(list)) " " span.count data-count=(list) { (layout::count(total)) } }
        nav.tabs {
            @for other in Listing::ALL {
                a class=[(other == listing).then_some("current")] href={ "tasks?list=" (other.as_str()) } {
                    (capitalised(other.as_str())) " (" (layout::count(counts.of(other))) ")"
                }
            }
        }
        form.filter action="tasks" method="get" {
            input type="hidden" name="list" value=(list);
            label { "Task " input type="text" name="task" value=[filter.task.as_deref()] placeholder="any"; }
            label { "Argument value " input type="text" name="q" value=[filter.value.as_deref()] placeholder="any"; }
            button type="submit" { "Filter" }
            @if !filter.is_empty() { a href={ "tasks?list=" (list) } { "Clear" } }
        }
        @if let Some(looked) = looked {
            p.scan {
                (records.len()) " matching among the " (layout::count(looked)) " tasks looked at"
                @if next.is_some() { "; stopped looking there (" a href=[next.as_deref()] { "look further" } ")" }
                @else { "; that is all of them" }
                "."
            }
        }
        (task_table(chrome, &records, now))
        (bulk_forms(chrome, list, &filter, total, looked.is_some()))
        (layout::pagination(&first, next))
    })
}

/// A table of tasks, with boxes to select them when the operator may act.
pub(in crate::dashboard) fn task_table(
    chrome: &Chrome<'_>,
    records: &[ExecutionRecord],
    now: std::time::SystemTime,
) -> Markup {
    html! {
        @if records.is_empty() {
            p.empty { "Nothing here." }
        } @else {
            div.table { table.tasks {
                (layout::task_head(chrome.acting))
                tbody { @for record in records { (layout::task_row(record, now, chrome.acting)) } }
            } }
        }
    }
}

/// The bulk actions: on the tasks selected, or on every task the filter matches.
fn bulk_forms(
    chrome: &Chrome<'_>,
    list: &str,
    filter: &Filter,
    total: usize,
    filtered: bool,
) -> Markup {
    if !chrome.acting {
        return html! {};
    }
    html! {
        form #bulk.bulk action="actions/bulk" method="post" {
            (chrome.csrf())
            input type="hidden" name="list" value=(list);
            input type="hidden" name="scope" value="selection";
            span { "Selected: " }
            button type="submit" name="op" value="cancel" { "Cancel" }
            button type="submit" name="op" value="run-now" { "Run now" }
        }
        form.bulk action="actions/bulk" method="post" {
            (chrome.csrf())
            input type="hidden" name="list" value=(list);
            input type="hidden" name="scope" value="filter";
            @if let Some(task) = &filter.task { input type="hidden" name="task" value=(task); }
            @if let Some(value) = &filter.value { input type="hidden" name="q" value=(value); }
            span { @if filtered { "Every match: " } @else { "All " (layout::count(total)) ": " } }
            button type="submit" name="op" value="cancel" { "Cancel…" }
            button type="submit" name="op" value="run-now" { "Run now…" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(in crate::dashboard) struct SearchQuery {
    q: Option<String>,
    after: Option<String>,
}

/// The search box: a key exactly, else tasks by name or argument value.
pub(in crate::dashboard) async fn search(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Query(query): Query<SearchQuery>,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Search");
    let wanted = query
        .q
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let result: crate::Result<Markup> = async {
        if wanted.is_empty() {
            return Ok(html! { h1 { "Search" } p { "Search by key, task name or argument value." } });
        }
        let docket = &app.docket;
        let now = docket.now().await?;
        let exact = docket.get_execution(&wanted).await?;
        let filter = Filter {
            task: Some(wanted.clone()),
            value: Some(wanted.clone()),
            either: true,
        };
        let from = query.after.as_deref().and_then(Position::from_text);
        let listings = [Listing::Running, Listing::Queued, Listing::Scheduled];
        let found = scan::scan(docket, &listings, &filter, from, PAGE_SIZE, SCAN_BUDGET).await?;
        let more = found.resume.map(|at| {
            format!("search?q={}&after={}", layout::encode(&wanted), layout::encode(&at.to_text()))
        });
        Ok(html! {
            h1 { "Search: " q { (wanted) } }
            @if exact.is_some() {
                p.exact { "The key " (layout::run_link(&wanted)) " has a record." }
            }
            p.scan {
                (found.records.len()) " live tasks whose task or an argument matches, among the "
                (layout::count(found.looked)) " looked at"
                @if let Some(more) = &more { "; stopped looking there (" a href=(more) { "look further" } ")" }
                @else { "; that is all of them" }
                "."
            }
            (task_table(&chrome, &found.records, now))
        })
    }
    .await;
    match result {
        Ok(body) => layout::html(StatusCode::OK, chrome.page(body)),
        Err(error) => layout::problem(&chrome, StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}
