//! Records finished runs in batches: every run ending while a batch is being written
//! joins the next one, so a busy worker writes many completions per round trip and an
//! idle one adds no delay.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::Shared;
use crate::backend::{Finish, FinishOutcome};
use crate::error::{Error, Result};

/// Most completions written in one call.
const BATCH: usize = 256;

type Item = (Finish, oneshot::Sender<Result<FinishOutcome>>);

pub(super) struct Finisher {
    sender: mpsc::Sender<Item>,
    task: JoinHandle<()>,
}

/// The runs' end of the finisher.
#[derive(Clone)]
pub(super) struct FinishSender(mpsc::Sender<Item>);

impl FinishSender {
    /// Records one run's end, waiting until it is written.
    pub(super) async fn finish(&self, run: Finish) -> Result<FinishOutcome> {
        let (reply, answer) = oneshot::channel();
        self.0.send((run, reply)).await.map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}

impl Finisher {
    pub(super) fn spawn(shared: Arc<Shared>) -> Self {
        let (sender, receiver) = mpsc::channel(BATCH * 4);
        let task = tokio::spawn(write_batches(shared, receiver));
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

async fn write_batches(shared: Arc<Shared>, mut receiver: mpsc::Receiver<Item>) {
    let mut items = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut items, BATCH).await > 0 {
        let (runs, replies): (Vec<Finish>, Vec<_>) = items.drain(..).unzip();
        match write(&shared, runs).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Protocol(message.clone())));
                }
            }
        }
    }
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
