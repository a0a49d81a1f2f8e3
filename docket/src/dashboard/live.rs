//! Live updates: server-sent events that tell a page something it shows changed, a few
//! times a second at most. A run's page follows that run's state and progress events;
//! the other pages follow the docket's counts and workers, read once a second per
//! browser (never per task).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State as AxumState};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{App, State};
use crate::model::Listing;

/// The shortest time between two updates of one page.
const THROTTLE: Duration = Duration::from_millis(250);

/// How often the docket-wide pages look for a change.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
pub(super) struct EventsQuery {
    key: Option<String>,
}

pub(super) async fn events(
    AxumState(app): State,
    Query(query): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (sender, receiver) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        match query.key {
            Some(key) => follow_run(&app, &key, &sender).await,
            None => follow_docket(&app, &sender).await,
        }
    });
    let stream = ReceiverStream::new(receiver)
        .map(|()| Ok(Event::default().event("changed").data("changed")));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Says `changed` to the page; false once the page has gone.
async fn changed(sender: &mpsc::Sender<()>) -> bool {
    // A full channel already holds a change the page has not taken: coalesce.
    match sender.try_send(()) {
        Ok(()) | Err(mpsc::error::TrySendError::Full(())) => {}
        Err(mpsc::error::TrySendError::Closed(())) => return false,
    }
    tokio::time::sleep(THROTTLE).await;
    !sender.is_closed()
}

/// Follows one run's events; polls its record now and then too, for a run that has not
/// been added yet or whose events were missed.
async fn follow_run(app: &App, key: &str, sender: &mpsc::Sender<()>) {
    let mut last = None;
    loop {
        let Ok(Some(execution)) = app.docket.get_execution(key).await else {
            if !wait_or_gone(sender).await {
                return;
            }
            continue;
        };
        let Ok(mut events) = execution.subscribe().await else {
            if !wait_or_gone(sender).await {
                return;
            }
            continue;
        };
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(_) => if !changed(sender).await { return },
                    None => break,
                },
                () = tokio::time::sleep(POLL * 5) => {
                    let state = execution.record().await.ok().flatten().map(|r| (r.state, r.message.generation));
                    if last.is_some() && state != last && !changed(sender).await {
                        return;
                    }
                    last = state;
                    if sender.is_closed() { return; }
                }
                () = sender.closed() => return,
            }
        }
    }
}

/// Waits a poll interval; false once the page has gone.
async fn wait_or_gone(sender: &mpsc::Sender<()>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(POLL) => true,
        () = sender.closed() => false,
    }
}

/// Follows the docket's counts, workers and recent activity. The first look counts as
/// a change: whatever changed between rendering the page and this stream's first look
/// is shown too.
async fn follow_docket(app: &App, sender: &mpsc::Sender<()>) {
    let mut last = None;
    loop {
        let seen = fingerprint(app).await;
        if seen.is_some() && seen != last && !changed(sender).await {
            return;
        }
        if seen.is_some() {
            last = seen;
        }
        if !wait_or_gone(sender).await {
            return;
        }
    }
}

/// What the docket-wide pages show, in short: counts, the first queued task, workers.
async fn fingerprint(
    app: &App,
) -> Option<(usize, usize, usize, Option<String>, Vec<String>, usize)> {
    let docket = &app.docket;
    let counts = docket.counts().await.ok()?;
    let first = docket
        .page(Listing::Queued, None, 1)
        .await
        .ok()?
        .records
        .first()
        .map(|record| record.message.key.clone());
    let workers = docket
        .workers()
        .await
        .ok()?
        .into_iter()
        .map(|w| w.name)
        .collect();
    let activity: u64 = docket
        .activity(
            docket
                .now()
                .await
                .ok()?
                .checked_sub(Duration::from_secs(10))?,
        )
        .await
        .ok()?
        .iter()
        .map(|i| i.activity.succeeded + i.activity.failed + i.activity.retried)
        .sum();
    Some((
        counts.queued,
        counts.scheduled,
        counts.running,
        first,
        workers,
        usize::try_from(activity).unwrap_or(usize::MAX),
    ))
}
