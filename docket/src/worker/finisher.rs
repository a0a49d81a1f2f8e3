//! Records finished runs in batches: every run ending while a batch is being written
//! joins the next one, so a busy worker writes many completions per round trip and an
//! idle one adds no delay.
//!
//! A run hands its end over and is done: the finisher holds the run's concurrency
//! permit until the end is written, then frees the permits of the whole batch at once,
//! so the worker claims their successors in one read.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Shared;
use crate::backend::{Finish, FinishOutcome};
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::observe::metrics;

/// Most completions written in one call.
const BATCH: usize = 256;

/// How many endings a batch can hold: each holds a run's permit, so there are never
/// more than the worker's concurrency (a batch's buffer, allocated for the worker's
/// lifetime, is sized by it, not by [`BATCH`]).
fn batch_size(concurrency: usize) -> usize {
    concurrency.clamp(1, BATCH)
}

/// One run's end, as the finisher takes it.
pub(super) struct Ending {
    pub finish: Finish,
    /// The run's execution, naming its task and key in what is reported.
    pub execution: Execution,
    /// The run's place in the worker's concurrency, freed once its end is written.
    pub permit: OwnedSemaphorePermit,
    /// Told once the end is written (or given up), for a run that waits for it.
    pub written: Option<oneshot::Sender<()>>,
}

/// What a batch keeps of each ending while its finishes are written.
struct Pending {
    execution: Execution,
    permit: OwnedSemaphorePermit,
    written: Option<oneshot::Sender<()>>,
}

pub(super) struct Finisher {
    sender: mpsc::Sender<Ending>,
    task: JoinHandle<()>,
}

/// The runs' end of the finisher.
#[derive(Clone)]
pub(super) struct FinishSender(mpsc::Sender<Ending>);

impl FinishSender {
    /// Hands one run's end to the finisher, which records it with the next batch.
    ///
    /// It never waits (a run's future keeps no send in flight, which made it a third
    /// larger): the channel holds as many endings as the worker has permits, and each
    /// ending holds one.
    pub(super) fn finish(&self, shared: &Shared, ending: Ending) {
        match self.0.try_send(ending) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(ending)) => {
                report(shared, &ending.execution, &Err(Error::Closed));
            }
            Err(mpsc::error::TrySendError::Full(ending)) => {
                debug_assert!(false, "more endings than permits");
                let sender = self.0.clone();
                tokio::spawn(async move {
                    if let Err(mpsc::error::SendError(ending)) = sender.send(ending).await {
                        unrecorded(ending.execution.key(), &Error::Closed);
                    }
                });
            }
        }
    }
}

impl Finisher {
    pub(super) fn spawn(shared: Arc<Shared>) -> Self {
        let concurrency = shared.settings.concurrency;
        let (sender, receiver) = mpsc::channel(concurrency.max(1));
        let task = tokio::spawn(write_batches(shared, receiver, batch_size(concurrency)));
        Self { sender, task }
    }

    pub(super) fn sender(&self) -> FinishSender {
        FinishSender(self.sender.clone())
    }

    /// Writes what is left and stops, giving up at `deadline`: finishes not written by
    /// then (Redis is unreachable) leave their messages pending, to be redelivered.
    pub(super) async fn close(self, deadline: tokio::time::Instant) {
        drop(self.sender);
        let mut task = self.task;
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(
                "could not record every finished task before stopping; their messages \
                 stay pending and will be redelivered"
            );
        }
    }
}

async fn write_batches(shared: Arc<Shared>, mut receiver: mpsc::Receiver<Ending>, batch: usize) {
    let mut endings = Vec::with_capacity(batch);
    while receiver.recv_many(&mut endings, batch).await > 0 {
        let (runs, pending): (Vec<Finish>, Vec<Pending>) = endings
            .drain(..)
            .map(|ending| {
                let pending = Pending {
                    execution: ending.execution,
                    permit: ending.permit,
                    written: ending.written,
                };
                (ending.finish, pending)
            })
            .unzip();
        let outcomes = write(&shared, runs).await;
        for (index, pending) in pending.into_iter().enumerate() {
            let recorded = match &outcomes {
                Ok(outcomes) => Ok(outcomes[index]),
                Err(error) => Err(Error::Protocol(error.to_string())),
            };
            report(&shared, &pending.execution, &recorded);
            drop(pending.permit);
            if let Some(written) = pending.written {
                let _ = written.send(());
            }
        }
    }
}

/// Says what became of a run's end when it was not simply recorded.
fn report(shared: &Shared, execution: &Execution, recorded: &Result<FinishOutcome>) {
    let key = execution.key();
    match recorded {
        Ok(FinishOutcome::Recorded) => {}
        Ok(FinishOutcome::Superseded) => {
            metrics::count(
                "docket_tasks_superseded",
                shared.labels(Some(execution.function())),
                1,
            );
            tracing::info!(docket.key = %key, "the run was superseded while running; its end was not recorded");
        }
        Ok(FinishOutcome::Fenced) => {
            tracing::warn!(key = %key, "the run was taken over by another worker; its end was not recorded");
        }
        Err(error) => unrecorded(key, error),
    }
}

fn unrecorded(key: &str, error: &Error) {
    tracing::warn!(key = %key, %error, "could not record the end of a run; it will be redelivered");
}

/// Writes one batch, retrying through a lost connection for as long as the messages
/// would stay ours (the redelivery timeout).
async fn write(shared: &Shared, runs: Vec<Finish>) -> Result<Vec<FinishOutcome>> {
    let backend = shared.docket.backend();
    let give_up = tokio::time::Instant::now() + shared.settings.redelivery_timeout;
    let mut delay = shared
        .settings
        .reconnection_delay
        .min(Duration::from_secs(1));
    loop {
        match backend.finish(&shared.info.name, runs.clone()).await {
            Ok(outcomes) if outcomes.len() == runs.len() => return Ok(outcomes),
            Ok(outcomes) => {
                return Err(Error::Protocol(format!(
                    "finished {} runs but the backend answered for {}",
                    runs.len(),
                    outcomes.len()
                )));
            }
            Err(error) if tokio::time::Instant::now() + delay < give_up => {
                shared.disruptions.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, retry_in = ?delay, "could not record finished runs; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(
                    shared
                        .settings
                        .reconnection_delay
                        .max(Duration::from_secs(1)),
                );
            }
            Err(error) => return Err(error),
        }
    }
}
