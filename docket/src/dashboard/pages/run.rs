//! One run by key: its record, arguments, attempts, live progress, result or error,
//! the timeline of its states, and what an operator can do with it.

use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Base, Chrome};
use crate::dashboard::{App, State};
use crate::model::{ExecutionRecord, ExecutionState};

/// How long the page waits for a completed run's result.
const RESULT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
pub(in crate::dashboard) struct RunQuery {
    key: Option<String>,
}

pub(in crate::dashboard) async fn page(
    AxumState(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
    Query(query): Query<RunQuery>,
) -> Response {
    let key = query.key.unwrap_or_default();
    let chrome = Chrome::new(&app, &base, &headers, &format!("Run {key}"))
        .live(format!("events?key={}", layout::encode(&key)));
    if key.is_empty() {
        return layout::problem(
            &chrome,
            StatusCode::BAD_REQUEST,
            "which run? give its key: run?key=KEY",
        );
    }
    match render(&app, &chrome, &key).await {
        Ok(Some(body)) => layout::html(StatusCode::OK, chrome.page(body)),
        Ok(None) => layout::problem(
            &chrome,
            StatusCode::NOT_FOUND,
            &format!("no record of the key `{key}`: it never ran here, or its record expired"),
        ),
        Err(error) => layout::problem(&chrome, StatusCode::BAD_GATEWAY, &error.to_string()),
    }
}

async fn render(app: &App, chrome: &Chrome<'_>, key: &str) -> crate::Result<Option<Markup>> {
    let docket = &app.docket;
    let Some(execution) = docket.get_execution(key).await? else {
        return Ok(None);
    };
    let Some(record) = execution.record().await? else {
        return Ok(None);
    };
    let now = docket.now().await?;
    let progress = execution.progress().await?;
    let result = if record.state == ExecutionState::Completed && record.has_result {
        Some(match execution.result_timeout(RESULT_WAIT).await {
            Ok(value) => serde_json::to_string_pretty(&value).unwrap_or_else(|_| value.to_string()),
            Err(error) => format!("(the result cannot be read: {error})"),
        })
    } else {
        None
    };
    let message = &record.message;
    let live = matches!(
        record.state,
        ExecutionState::Scheduled | ExecutionState::Queued | ExecutionState::Running
    );
    Ok(Some(html! {
        h1 { "Run " span.key { (key) } " " (layout::state_badge(record.state)) }
        dl.record {
            dt { "Task" } dd { (message.function) }
            dt { "Attempt" } dd { (message.attempt) }
            dt { "Generation" } dd { (message.generation) }
            dt { "Due" } dd { (layout::moment(message.when, now)) " · " (layout::timestamp(message.when)) }
            @if let Some(worker) = &record.worker { dt { "Worker" } dd { (worker) } }
        }
        @if let Some(progress) = &progress {
            section.progress {
                h2 { "Progress" }
                @let total = progress.total.unwrap_or(0).max(progress.current);
                progress #progress value=(progress.current) max=(total.max(1)) {}
                span.progress-text { (progress.current) @if let Some(total) = progress.total { " of " (total) } }
                @if let Some(text) = &progress.message { p.progress-message { (text) } }
            }
        }
        section { h2 { "Arguments" } pre.json { (layout::pretty_json(&message.args)) } }
        @if let Some(error) = &record.error {
            section.error { h2 { "Error" } p { code { (error.kind_name()) } } pre { (error.message()) } }
        }
        @if let Some(result) = &result {
            section { h2 { "Result" } pre.json { (result) } }
        }
        section { h2 { "Timeline" } (timeline(&record, now)) }
        @if chrome.acting { (actions(chrome, &record, live)) }
    }))
}

/// The moments of a run, as its record knows them.
fn timeline(record: &ExecutionRecord, now: SystemTime) -> Markup {
    let message = &record.message;
    let ended = matches!(
        record.state,
        ExecutionState::Completed | ExecutionState::Failed | ExecutionState::Cancelled
    );
    html! {
        ol.timeline {
            li { "Due " (layout::moment(message.when, now)) " (attempt " (message.attempt) ")" }
            @if record.state == ExecutionState::Queued { li { "Queued, waiting for a worker" } }
            @if let Some(started) = record.started_at {
                li { "Started " (layout::moment(started, now))
                    @if let Some(worker) = &record.worker { " on " (worker) } }
            }
            @if let Some(completed) = record.completed_at {
                li { (record.state.to_string().to_lowercase()) " " (layout::moment(completed, now))
                    @if let (Some(started), true) = (record.started_at, ended) {
                        " after " (layout::span(completed.duration_since(started).unwrap_or_default()))
                    }
                }
            } @else if ended {
                li { (record.state.to_string().to_lowercase()) }
            }
        }
    }
}

/// What an operator can do with the run.
fn actions(chrome: &Chrome<'_>, record: &ExecutionRecord, live: bool) -> Markup {
    let key = &record.message.key;
    html! {
        section.actions {
            h2 { "Actions" }
            div.buttons {
                @if live {
                    form action="actions/cancel" method="post" {
                        (chrome.csrf()) input type="hidden" name="key" value=(key);
                        button.danger type="submit" { "Cancel" }
                    }
                }
                @if record.state != ExecutionState::Running {
                    form action="actions/run-now" method="post" {
                        (chrome.csrf()) input type="hidden" name="key" value=(key);
                        button type="submit" { @if live { "Run now" } @else { "Run again" } }
                    }
                }
            }
            form.replace action="actions/replace" method="post" {
                (chrome.csrf()) input type="hidden" name="key" value=(key);
                label { "Arguments (a JSON object) "
                    textarea name="args" rows="6" spellcheck="false" { (layout::pretty_json(&record.message.args)) } }
                button type="submit" { "Replace the arguments and run" }
            }
        }
    }
}
