//! Waiting on an execution: results and event subscriptions.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::Core;
use crate::backend::{Backend, EventStream};
use crate::error::{Error, Result};
use crate::model::{Event, ExecutionRecord, ExecutionState, TaskError, TaskErrorKind};

/// How long a waiter goes at least without reading its record again, plus a random
/// stretch up to as long again so that many waiters spread their reads. Only a safety
/// net: a subscription that may have missed events ends, and the record is read then.
const RECHECK: Duration = Duration::from_secs(30);

/// How long a waiter waits before trying again when subscribing again or reading the
/// record failed.
const RETRY: Duration = Duration::from_secs(1);

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
    let mut watch = Watch::start(backend, key).await?;
    // No record is kept while waiting: a waiter holds its subscription and little else.
    let mut read = watch.settle(backend.record(key).await)?;
    loop {
        match std::mem::replace(&mut read, Read::Nothing) {
            Read::Gone => return Err(Error::NotFound(key.to_owned())),
            // Boxed: reading the result is no part of what a waiter holds.
            Read::Record(record) if record.state.is_terminal() => {
                return Box::pin(finished(core, *record)).await;
            }
            Read::Record(_) | Read::Nothing => {}
        }
        let heard = match deadline {
            Some(deadline) if Instant::now() >= deadline => {
                return Err(Error::WaitTimeout {
                    key: key.to_owned(),
                    timeout: timeout.unwrap_or_default(),
                });
            }
            Some(deadline) => tokio::time::timeout_at(deadline, watch.next()).await.ok(),
            None => Some(watch.next().await),
        };
        read = match heard {
            Some(Heard::Event(event)) if !ends_a_run(&event) => Read::Nothing,
            Some(Heard::Record(record)) => watch.settle(record)?,
            // A run ended, or time is up: the record says which run and how.
            Some(Heard::Event(_)) | None => watch.settle(backend.record(key).await)?,
        };
    }
}

/// What a waiter has to look at.
enum Read {
    /// Nothing new (or a read that will be tried again shortly).
    Nothing,
    /// The record is gone.
    Gone,
    /// Boxed: the waiter's future stays small.
    Record(Box<ExecutionRecord>),
}

/// Whether `event` is a terminal state.
fn ends_a_run(event: &Event) -> bool {
    matches!(event, Event::State { state, .. } if state.is_terminal())
}

/// What a [`Watch`] heard.
enum Heard {
    /// A live event.
    Event(Event),
    /// The record, read again: the subscription may have missed events, or it was
    /// time for the safety net.
    Record(Result<Option<ExecutionRecord>>),
}

/// One key followed for a waiter: its live events, and its record read again whenever
/// they may have missed something. Events are published only while a subscription is
/// registered, and the backend ends a subscription when it may have missed some (its
/// connection was lost, its registration vanished): the watch then subscribes again
/// and reads the record, so that no waiter waits for an end it did not hear.
struct Watch {
    backend: Arc<dyn Backend>,
    key: String,
    /// `None` while subscribing again failed.
    events: Option<EventStream>,
    recheck_at: Instant,
}

impl Watch {
    async fn start(backend: &Arc<dyn Backend>, key: &str) -> Result<Self> {
        let events = backend.subscribe(key).await?;
        Ok(Self {
            backend: Arc::clone(backend),
            key: key.to_owned(),
            events: Some(events),
            recheck_at: after_recheck(),
        })
    }

    /// The next live event, or the record read again.
    ///
    /// # Cancel safety
    /// Cancel safe: a subscription left ended is renewed by the next call.
    async fn next(&mut self) -> Heard {
        if let Some(events) = &mut self.events {
            match tokio::time::timeout_at(self.recheck_at, events.next()).await {
                Ok(Some(event)) => return Heard::Event(event),
                Ok(None) => self.subscribe_again().await,
                Err(_) => {}
            }
        } else {
            tokio::time::sleep(RETRY).await;
            self.subscribe_again().await;
        }
        let read = self.backend.record(&self.key).await;
        self.recheck_at = if read.is_ok() {
            after_recheck()
        } else {
            Instant::now() + RETRY
        };
        Heard::Record(read)
    }

    /// A read of the record to look at: nothing when it failed for a reason that passes
    /// (a timeout, a reconnection), and the record is then read again shortly; a waiter
    /// does not fail for a moment of overload among a great many.
    ///
    /// # Errors
    /// Any other error of the read.
    fn settle(&mut self, read: Result<Option<ExecutionRecord>>) -> Result<Read> {
        match read {
            Ok(Some(record)) => Ok(Read::Record(Box::new(record))),
            Ok(None) => Ok(Read::Gone),
            Err(error) if error.is_unreachable() => {
                tracing::debug!(key = %self.key, "reading the record again shortly: {error}");
                self.recheck_at = Instant::now() + RETRY;
                Ok(Read::Nothing)
            }
            Err(error) => Err(error),
        }
    }

    /// Subscribes anew before the old subscription is dropped, so the key stays
    /// subscribed throughout.
    async fn subscribe_again(&mut self) {
        self.events = self.backend.subscribe(&self.key).await.ok();
    }
}

/// When the safety net reads the record next: [`RECHECK`] from now plus up to as long
/// again, at random.
fn after_recheck() -> Instant {
    let random = std::hash::RandomState::new().hash_one(0_u8);
    let per_mille = u32::try_from(random % 1000).unwrap_or(0);
    Instant::now() + RECHECK + RECHECK * per_mille / 1000
}

async fn finished<T: DeserializeOwned>(core: &Core, record: ExecutionRecord) -> Result<T> {
    let key = record.message.key.as_str();
    match record.state {
        ExecutionState::Completed => {
            let stored = if record.has_result {
                core.results
                    .get(&*core.backend, &core.name, key, record.message.generation)
                    .await?
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
    let watch = Watch::start(backend, key).await?;
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
    let already_done = first.is_empty() || first.iter().any(ends_a_run);
    let follow = Follow {
        first: first.into_iter(),
        watch: (!already_done).then_some(watch),
        last: None,
    };
    // End right after the first terminal state event, without waiting for another.
    let stream = futures::stream::unfold(Some(follow), |follow| async move {
        let mut follow = follow?;
        let event = follow.next().await?;
        let terminal = ends_a_run(&event);
        Some((event, (!terminal).then_some(follow)))
    });
    Ok(stream.boxed())
}

/// What a subscriber is told: the events read from the record first, then what the
/// watch hears. A state is told once: one read from the record, or published twice,
/// is not told again.
struct Follow {
    first: std::vec::IntoIter<Event>,
    watch: Option<Watch>,
    last: Option<(ExecutionState, u64, Option<String>)>,
}

impl Follow {
    async fn next(&mut self) -> Option<Event> {
        loop {
            let event = match self.first.next() {
                Some(event) => event,
                None => match self.watch.as_mut()?.next().await {
                    Heard::Event(event) => event,
                    Heard::Record(Ok(Some(record))) => record.event(),
                    // No record any more (fire-and-forget, expired): nothing more will
                    // be said of it.
                    Heard::Record(Ok(None)) => return None,
                    // Unreachable for now: the watch reads it again soon.
                    Heard::Record(Err(_)) => continue,
                },
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
