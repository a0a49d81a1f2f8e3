//! Dead letters, workers, strikes and schedules.

use axum::Extension;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Base, Chrome};
use super::tasks::PAGE_SIZE;
use crate::dashboard::{App, State};
use crate::model::{Operator, Schedule};

/// A page's frame and body, or the problem that stopped it.
async fn respond(
    chrome: &Chrome<'_>,
    body: impl Future<Output = crate::Result<Markup>>,
) -> Response {
    match body.await {
        Ok(body) => layout::html(StatusCode::OK, chrome.page(body)),
        Err(error) => layout::problem(chrome, StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(in crate::dashboard) struct OffsetQuery {
    from: Option<usize>,
}

pub(in crate::dashboard) async fn dead_letters(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Query(query): Query<OffsetQuery>,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Dead letters").live("events");
    respond(
        &chrome,
        dead_letters_body(&app, &chrome, query.from.unwrap_or(0)),
    )
    .await
}

async fn dead_letters_body(app: &App, chrome: &Chrome<'_>, from: usize) -> crate::Result<Markup> {
    let letters = app.docket.dead_letters().await?;
    let total = letters.len();
    let shown = letters.iter().skip(from).take(PAGE_SIZE);
    let next =
        (from + PAGE_SIZE < total).then(|| format!("dead-letters?from={}", from + PAGE_SIZE));
    Ok(html! {
        h1 { "Dead letters " span.count { (layout::count(total)) } }
        p { "Calls given up on after their workers kept dying, or that no worker served in time." }
        @if letters.is_empty() { p.empty { "None." } } @else {
            div.table { table.tasks {
                thead { tr {
                    @if chrome.acting { th.select { input type="checkbox" data-select-all aria-label="select all"; } }
                    th { "Key" } th { "Task" } th { "Arguments" } th { "Why" } th { "When" }
                } }
                tbody { @for letter in shown {
                    tr data-key=(letter.key) {
                        @if chrome.acting { td.select { input type="checkbox" name="key" value=(letter.key) form="bulk" aria-label={ "select " (letter.key) }; } }
                        td { (layout::run_link(&letter.key)) }
                        td.task { (letter.function) }
                        td { (layout::short_args(&letter.args)) }
                        td.error { (letter.error) }
                        td { (letter.dead_at) }
                    }
                } }
            } }
            @if chrome.acting {
                form #bulk.bulk action="actions/bulk" method="post" {
                    (chrome.csrf())
                    input type="hidden" name="list" value="dead-letters";
                    input type="hidden" name="scope" value="selection";
                    span { "Selected: " }
                    button type="submit" name="op" value="retry" { "Retry" }
                    button.danger type="submit" name="op" value="purge" { "Purge" }
                }
                form.bulk action="actions/bulk" method="post" {
                    (chrome.csrf())
                    input type="hidden" name="list" value="dead-letters";
                    input type="hidden" name="scope" value="filter";
                    span { "All " (layout::count(total)) ": " }
                    button type="submit" name="op" value="retry" { "Retry all…" }
                    button.danger type="submit" name="op" value="purge" { "Purge all…" }
                }
            }
            (layout::pagination("dead-letters", next))
        }
    })
}

pub(in crate::dashboard) async fn workers(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Workers").live("events");
    let body = async {
        let now = app.docket.now().await?;
        let workers = app.docket.workers().await?;
        Ok(html! {
            h1 { "Workers " span.count { (workers.len()) } }
            @if workers.is_empty() { p.empty { "No worker has sent a heartbeat lately." } } @else {
                div.table { table {
                    thead { tr { th { "Worker" } th { "Last heartbeat" } th { "Tasks it serves" } } }
                    tbody { @for worker in &workers {
                        tr {
                            td { (worker.name) }
                            td { (layout::moment(worker.last_seen, now)) }
                            td.tasks { @for task in &worker.tasks {
                                a.tag href={ "tasks?list=queued&task=" (layout::encode(task)) } { (task) } " "
                            } }
                        }
                    } }
                } }
            }
        })
    };
    respond(&chrome, body).await
}

pub(in crate::dashboard) async fn strikes(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Strikes");
    let strikes = app.docket.strikes();
    let body = html! {
        h1 { "Strikes " span.count { (strikes.len()) } }
        p { "Calls a strike matches are refused when added and cancelled instead of run, until restored." }
        @if strikes.is_empty() { p.empty { "No strike is in effect." } } @else {
            div.table { table {
                thead { tr { th { "Task" } th { "Condition" } @if chrome.acting { th {} } } }
                tbody { @for strike in &strikes {
                    @let fields = strike_fields(strike);
                    tr {
                        td { (strike.task_name().unwrap_or("any task")) }
                        td { @if let Some((parameter, operator, value)) = strike.condition() {
                            code { (parameter) " " (operator) " " (value) }
                        } @else { "every call" } }
                        @if chrome.acting { td {
                            form action="actions/restore" method="post" {
                                (chrome.csrf())
                                input type="hidden" name="task" value=(fields.0);
                                input type="hidden" name="parameter" value=(fields.1);
                                input type="hidden" name="operator" value=(fields.2);
                                input type="hidden" name="value" value=(fields.3);
                                button type="submit" { "Restore" }
                            }
                        } }
                    }
                } }
            } }
        }
        @if chrome.acting {
            h2 { "Strike" }
            form.strike action="actions/strike" method="post" {
                (chrome.csrf())
                label { "Task " input type="text" name="task" placeholder="any task"; }
                label { "Parameter " input type="text" name="parameter" placeholder="none: the whole task"; }
                label { "Operator " select name="operator" { @for op in Operator::ALL { option value=(op.as_str()) { (op.as_str()) } } } }
                label { "Value " input type="text" name="value" placeholder="int:7, bool:true, json:[1,10] or text"; }
                button.danger type="submit" { "Strike" }
            }
        }
    };
    layout::html(StatusCode::OK, chrome.page(body))
}

/// A strike as the strike form's fields: task, parameter, operator and typed value.
fn strike_fields(strike: &crate::model::Strike) -> (String, String, String, String) {
    let task = strike.task_name().unwrap_or_default().to_owned();
    match strike.condition() {
        Some((parameter, operator, value)) => (
            task,
            parameter.to_owned(),
            operator.as_str().to_owned(),
            format!("json:{value}"),
        ),
        None => (task, String::new(), "==".to_owned(), String::new()),
    }
}

pub(in crate::dashboard) async fn schedules(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Schedules").live("events");
    let body = async {
        let now = app.docket.now().await?;
        let mut tasks: Vec<_> = crate::task::registry::registered()
            .filter(|task| task.options().schedule.is_some())
            .collect();
        tasks.sort_by_key(|task| task.name());
        let mut rows = Vec::new();
        for task in tasks {
            let record = app.docket.get_execution(task.name()).await?;
            let record = match record {
                Some(execution) => execution.record().await?,
                None => None,
            };
            rows.push((task, record));
        }
        Ok(html! {
            h1 { "Schedules" }
            p { "The perpetual and cron tasks this binary knows, and when each runs next (its key is its name)." }
            @if rows.is_empty() { p.empty { "This binary has no perpetual or cron task." } } @else {
                div.table { table {
                    thead { tr { th { "Task" } th { "Schedule" } th { "Seeded by workers" } th { "State" } th { "Next due" } } }
                    tbody { @for (task, record) in &rows {
                        tr {
                            td { (layout::run_link(task.name())) }
                            td { (match task.options().schedule {
                                Some(Schedule::Every(every)) => format!("every {}", layout::span(every)),
                                Some(Schedule::Cron { expression, time_zone }) => format!("cron {expression} ({})", time_zone.unwrap_or("UTC")),
                                None => String::new(),
                            }) }
                            td { @if task.options().automatic { "yes" } @else { "no" } }
                            td { @if let Some(record) = record { (layout::state_badge(record.state)) } @else { "not scheduled" } }
                            td { @if let Some(record) = record { (layout::moment(record.message.when, now)) } }
                        }
                    } }
                } }
            }
        })
    };
    respond(&chrome, body).await
}
