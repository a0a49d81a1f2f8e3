//! Waiting on an execution: results and event subscriptions.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::Core;
use crate::error::{Error, Result};
use crate::model::{Event, ExecutionRecord, ExecutionState, TaskError, TaskErrorKind};

/// How often a waiter re-reads the record in case an event was missed (a reconnect).
const RECHECK: Duration = Duration::from_secs(1);

pub(super) async fn result<T: DeserializeOwned>(
    core: &Core,
    key: &str,
    timeout: Option<Duration>,
) -> Result<T> {
    if core.execution_ttl.is_zero() {
        return Err(Error::ResultsDisabled(key.to_owned()));
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    let backend = &core.backend;
    let mut events = backend.subscribe(key).await?;
    loop {
        let Some(record) = backend.record(key).await? else {
            return Err(Error::NotFound(key.to_owned()));
        };
        if record.state.is_terminal() {
            return finished(core, record).await;
        }
        let wait = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::WaitTimeout {
                        key: key.to_owned(),
                        timeout: timeout.unwrap_or_default(),
                    });
                }
                left.min(RECHECK)
            }
            None => RECHECK,
        };
        // Any event (or none within `wait`) sends us back to read the record. A
        // subscription that ended (its connection dropped) is renewed after a pause.
        if let Ok(None) = tokio::time::timeout(wait, events.next()).await {
            tokio::time::sleep(wait).await;
            events = match backend.subscribe(key).await {
                Ok(events) => events,
                Err(_) => Box::pin(futures::stream::empty()),
            };
        }
    }
}

async fn finished<T: DeserializeOwned>(core: &Core, record: ExecutionRecord) -> Result<T> {
    let key = record.message.key.as_str();
    match record.state {
        ExecutionState::Completed => {
            let stored = if record.has_result {
                core.backend.result(key, record.message.generation).await?
            } else {
                None
            };
            let text = stored.as_deref().unwrap_or("null");
            serde_json::from_str(text).map_err(|source| Error::Deserialize {
                key: key.to_owned(),
                source,
            })
        }
        ExecutionState::Failed => Err(Error::TaskFailed {
            key: key.to_owned(),
            error: record.error.unwrap_or_else(|| {
                TaskError::new(
                    TaskErrorKind::Failed,
                    "the run failed without an error message",
                )
            }),
        }),
        ExecutionState::Cancelled => Err(Error::Cancelled(key.to_owned())),
        state => Err(Error::Protocol(format!(
            "`{key}` is {state}, which is not terminal"
        ))),
    }
}

pub(super) async fn subscribe(
    core: &Arc<Core>,
    key: &str,
) -> Result<impl Stream<Item = Event> + Send + Unpin + 'static> {
    let backend = &core.backend;
    let live = backend.subscribe(key).await?;
    let mut first = Vec::new();
    if let Some(record) = backend.record(key).await? {
        first.push(record.event());
        if record.state == ExecutionState::Running
            && let Some(progress) = backend.progress(key).await?
        {
            first.push(Event::Progress(progress));
        }
    }
    // No record (fire-and-forget, or expired): nothing more will ever be said of it.
    let already_done = first.is_empty()
        || first
            .iter()
            .any(|event| matches!(event, Event::State { state, .. } if state.is_terminal()));
    let live = if already_done {
        futures::stream::empty().boxed()
    } else {
        live.boxed()
    };
    // End right after the first terminal state event, without waiting for another.
    let events = futures::stream::iter(first).chain(live).boxed();
    let follow = Follow {
        events,
        core: core.clone(),
        key: key.to_owned(),
        last: None,
    };
    let stream = futures::stream::unfold(Some(follow), |follow| async move {
        let mut follow = follow?;
        let event = follow.next().await?;
        let terminal = matches!(&event, Event::State { state, .. } if state.is_terminal());
        Some((event, (!terminal).then_some(follow)))
    });
    Ok(stream.boxed())
}

/// A subscription's events, with the record read again whenever a second passes without
/// one: events are published only while a subscription is registered, and one missed
/// (a lapsed registration, a flushed listeners key) must not leave a follower waiting
/// for ever. A state is told once: one read that way, or published twice, is not told
/// again.
struct Follow {
    events: futures::stream::BoxStream<'static, Event>,
    core: Arc<Core>,
    key: String,
    last: Option<(ExecutionState, u64, Option<String>)>,
}

impl Follow {
    async fn next(&mut self) -> Option<Event> {
        loop {
            let event = if let Ok(event) = tokio::time::timeout(RECHECK, self.events.next()).await {
                event?
            } else {
                let record = match self.core.backend.record(&self.key).await {
                    Ok(Some(record)) => record,
                    // No record any more (fire-and-forget, expired): nothing more will
                    // be said of it.
                    Ok(None) => return None,
                    // Unreachable for now: the next second tries again.
                    Err(_) => continue,
                };
                record.event()
            };
            if let Event::State {
                state,
                generation,
                worker,
                ..
            } = &event
            {
                let seen = (*state, *generation, worker.clone());
                if self.last.as_ref() == Some(&seen) {
                    continue;
                }
                self.last = Some(seen);
            }
            return Some(event);
        }
    }
}
