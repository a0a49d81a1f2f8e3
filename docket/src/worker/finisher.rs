//! Records finished runs in batches: every run ending while a batch is being written
//! joins the next one, so a busy worker writes many completions per round trip and an
//! idle one adds no delay.
//!
//! A run hands its end over and is done. Its concurrency permit stays with the end
//! until the finisher takes it into a batch; then the batch trades its runs' permits for
//! writing permits of its own, so the worker reads and claims the successors while the
//! batch is written, and still knows that something is unwritten (see
//! [`Finisher::unwritten`]). So at concurrency 1 the next run may start while the last
//! end is still being written; a task whose concurrency slot that end releases waits
//! for it, and the finish script wakes it.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Shared;
use crate::backend::{Finish, FinishOutcome};
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::observe::metrics;

/// Most completions written in one call.
const BATCH: usize = 256;

/// How many handovers a batch can hold: each holds a run's permit, so there are never
/// more than the worker's concurrency (a batch's buffer, allocated for the worker's
/// lifetime, is sized by it, not by [`BATCH`]).
fn batch_size(concurrency: usize) -> usize {
    concurrency.clamp(1, BATCH)
}

/// One run's end, handed over to the finisher.
pub(super) struct Handover {
    pub finish: Finish,
    /// The run's execution, naming its task and key in what is reported.
    pub execution: Execution,
    /// The run's place in the worker's concurrency, freed once its end is in the batch
    /// being written.
    pub permit: OwnedSemaphorePermit,
    /// Told once the end is written (or given up), for a run that waits for it.
    pub written: Option<oneshot::Sender<()>>,
}

/// What a batch keeps of each handover while its finishes are written.
struct Pending {
    execution: Execution,
    written: Option<oneshot::Sender<()>>,
}

pub(super) struct Finisher {
    sender: mpsc::Sender<Handover>,
    task: JoinHandle<()>,
    /// One permit per handover the batch being written holds (there is one batch at a
    /// time, of at most `capacity` handovers).
    writing: Arc<Semaphore>,
    capacity: usize,
}

/// The runs' end of the finisher.
#[derive(Clone)]
pub(super) struct FinishSender(mpsc::Sender<Handover>);

impl FinishSender {
    /// Hands one run's end to the finisher, which records it with the next batch.
    ///
    /// It never waits (a run's future keeps no send in flight, which made it a third
    /// larger): the channel holds as many handovers as the worker has permits, and each
    /// handover holds one.
    pub(super) fn finish(&self, shared: &Shared, handover: Handover) {
        match self.0.try_send(handover) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(handover)) => {
                report(shared, &handover.execution, &Err(Error::Closed));
            }
            Err(mpsc::error::TrySendError::Full(handover)) => {
                debug_assert!(false, "more handovers than permits");
                let sender = self.0.clone();
                tokio::spawn(async move {
                    if let Err(mpsc::error::SendError(handover)) = sender.send(handover).await {
                        unrecorded(handover.execution.key(), &Error::Closed);
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
        let capacity = batch_size(concurrency);
        let writing = Arc::new(Semaphore::new(capacity));
        let writer = shared.clone();
        let task = tokio::spawn(write_batches(
            receiver,
            writing.clone(),
            capacity,
            move |runs| {
                let shared = writer.clone();
                async move { write(&shared, runs).await }
            },
            move |execution, recorded| report(&shared, execution, recorded),
        ));
        Self {
            sender,
            task,
            writing,
            capacity,
        }
    }

    pub(super) fn sender(&self) -> FinishSender {
        FinishSender(self.sender.clone())
    }

    /// Whether a batch is being written. Ask after the worker's permits: a handover
    /// holds its run's permit until its batch holds writing permits, so when every
    /// permit is free and then nothing is being written, every end handed over is
    /// written.
    pub(super) fn unwritten(&self) -> bool {
        self.writing.available_permits() < self.capacity
    }

    /// Waits until the batch being written, if any, is written (see
    /// [`unwritten`](Self::unwritten) on the order to ask in).
    pub(super) fn all_written(&self) -> impl Future<Output = ()> + use<> {
        let (writing, capacity) = (self.writing.clone(), self.capacity);
        async move {
            let all = u32::try_from(capacity).unwrap_or(u32::MAX);
            // The semaphore is never closed; a closed one would have nothing to wait for.
            let _ = writing.acquire_many_owned(all).await;
        }
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

/// Takes the handovers in batches of at most `batch` (`writing` has as many permits), one
/// batch at a time: the batch takes a writing permit per handover before it frees the
/// runs' permits, is written with `write`, and each handover is reported with `report`.
async fn write_batches<W, F>(
    mut receiver: mpsc::Receiver<Handover>,
    writing: Arc<Semaphore>,
    batch: usize,
    mut write: W,
    report: impl Fn(&Execution, &Result<FinishOutcome>),
) where
    W: FnMut(Vec<Finish>) -> F,
    F: Future<Output = Result<Vec<FinishOutcome>>>,
{
    let mut handovers = Vec::with_capacity(batch);
    while receiver.recv_many(&mut handovers, batch).await > 0 {
        let held = u32::try_from(handovers.len()).unwrap_or(u32::MAX);
        // The last batch is written, so these are free, unless `all_written` is waiting
        // (it takes permits as they come): then this batch waits its turn. (The
        // semaphore is never closed.)
        let unwritten = writing.clone().acquire_many_owned(held).await.ok();
        let mut runs = Vec::with_capacity(handovers.len());
        let mut pending = Vec::with_capacity(handovers.len());
        for handover in handovers.drain(..) {
            runs.push(handover.finish);
            pending.push(Pending {
                execution: handover.execution,
                written: handover.written,
            });
            // The run's place in the worker's concurrency: free for the next claim.
            drop(handover.permit);
        }
        let outcomes = write(runs).await;
        let mut listeners = Vec::new();
        for (index, pending) in pending.into_iter().enumerate() {
            let recorded = match &outcomes {
                Ok(outcomes) => Ok(outcomes[index]),
                Err(error) => Err(Error::Protocol(error.to_string())),
            };
            report(&pending.execution, &recorded);
            listeners.extend(pending.written);
        }
        // Written (or given up) and reported: no longer in flight, before anyone waiting
        // for it hears so.
        drop(unwritten);
        for written in listeners {
            let _ = written.send(());
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
        match backend.finish(shared.info.name(), runs.clone()).await {
            Ok(outcomes) if outcomes.len() == runs.len() => return Ok(outcomes),
            Ok(outcomes) => {
                return Err(Error::Protocol(format!(
                    "finished {} runs but the backend answered for {}",
                    runs.len(),
                    outcomes.len()
                )));
            }
            Err(error) if tokio::time::Instant::now() + delay < give_up => {
                shared.mark_lost("recording finished runs", &error);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{EntryId, Outcome};

    #[docket::task(name = "finisher_probe")]
    async fn probe() {}

    fn handover(
        execution: Execution,
        permit: OwnedSemaphorePermit,
    ) -> (Handover, oneshot::Receiver<()>) {
        let (written, heard) = oneshot::channel();
        let finish = Finish {
            delivery: EntryId::default(),
            key: execution.key().to_owned(),
            generation: execution.generation(),
            outcome: Outcome::Completed { result: None },
            next: None,
            release: None,
        };
        let handover = Handover {
            finish,
            execution,
            permit,
            written: Some(written),
        };
        (handover, heard)
    }

    /// While a batch is written, its runs' permits are free for the next claim, and the
    /// batch counts as unwritten until its write returns.
    #[tokio::test]
    async fn a_batch_frees_its_runs_permits_while_it_is_written() {
        let docket = crate::Docket::connect("finisher-probe", "memory://finisher-probe")
            .await
            .unwrap();
        let slots = Arc::new(Semaphore::new(2));
        let writing = Arc::new(Semaphore::new(2));
        let (sender, receiver) = mpsc::channel(2);
        // Both ends wait in the channel before the finisher starts: one batch of two.
        let mut heard = Vec::new();
        for _ in 0..2 {
            let execution = docket.add(Probe::new()).await.unwrap().untyped();
            let permit = slots.clone().acquire_owned().await.unwrap();
            let (handover, written) = handover(execution, permit);
            sender.send(handover).await.unwrap();
            heard.push(written);
        }
        assert_eq!(slots.available_permits(), 0);
        let (entered, mut writes) = mpsc::unbounded_channel();
        let gate = Arc::new(tokio::sync::Notify::new());
        let opened = gate.clone();
        let finisher = tokio::spawn(write_batches(
            receiver,
            writing.clone(),
            2,
            move |runs: Vec<Finish>| {
                let (entered, opened) = (entered.clone(), opened.clone());
                async move {
                    let _ = entered.send(runs.len());
                    opened.notified().await;
                    Ok(vec![FinishOutcome::Recorded; runs.len()])
                }
            },
            |_: &Execution, _: &Result<FinishOutcome>| {},
        ));

        assert_eq!(writes.recv().await, Some(2), "one batch of both ends");
        // Being written: the runs' permits are back, the batch's are taken.
        assert_eq!(slots.available_permits(), 2);
        assert_eq!(writing.available_permits(), 0);
        gate.notify_one();
        for heard in heard {
            heard.await.unwrap();
        }
        assert_eq!(writing.available_permits(), 2, "written: nothing unwritten");
        drop(sender);
        finisher.await.unwrap();
    }
}
