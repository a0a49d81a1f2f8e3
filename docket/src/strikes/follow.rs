//! Following the strikes stream: every `Docket` replays it when it connects, then reads
//! new instructions as they arrive, on a task of its own.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::backend::{Backend, EntryId};
use crate::model::{Instruction, Strike, StrikeSet};

/// How many entries one read takes.
pub(crate) const READ_BATCH: usize = 512;
/// How long a caught-up follower blocks waiting for a new instruction.
const BLOCK: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Progress {
    /// The replay reached the end of the stream once.
    loaded: bool,
    /// The last entry applied.
    last: EntryId,
}

/// One docket handle's view of the strikes in effect.
#[derive(Debug)]
pub(crate) struct Strikes {
    set: RwLock<StrikeSet>,
    progress: watch::Sender<Progress>,
}

impl Strikes {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            set: RwLock::default(),
            progress: watch::channel(Progress::default()).0,
        })
    }

    /// The strike that blocks a call, if any.
    pub(crate) fn blocking(&self, function: &str, args: &str) -> Option<Strike> {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking(function, args)
    }

    pub(crate) fn all(&self) -> Vec<Strike> {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .all()
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.progress.borrow().loaded
    }

    /// Waits until the replay finished; false if `within` passed first.
    pub(crate) async fn wait_loaded(&self, within: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        tokio::time::timeout(within, progress.wait_for(|p| p.loaded))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the entry `id` (one this handle wrote) is applied.
    pub(crate) async fn wait_applied(&self, id: EntryId, within: Duration) -> bool {
        let mut progress = self.progress.subscribe();
        tokio::time::timeout(within, progress.wait_for(|p| p.loaded && p.last >= id))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn apply(&self, id: EntryId, instruction: Instruction) {
        self.set
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .apply(instruction);
        self.progress.send_modify(|p| p.last = p.last.max(id));
    }

    fn mark_loaded(&self) {
        self.progress
            .send_if_modified(|p| !std::mem::replace(&mut p.loaded, true));
    }
}

/// The follower task of one docket handle; stopped when dropped.
#[derive(Debug)]
pub(crate) struct StrikeFollower(tokio::task::AbortHandle);

impl Drop for StrikeFollower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl StrikeFollower {
    pub(crate) fn spawn(backend: Arc<dyn Backend>, strikes: Arc<Strikes>, docket: String) -> Self {
        Self(tokio::spawn(follow(backend, strikes, docket)).abort_handle())
    }
}

async fn follow(backend: Arc<dyn Backend>, strikes: Arc<Strikes>, docket: String) {
    let mut after: Option<EntryId> = None;
    let mut pause = Duration::from_millis(100);
    loop {
        let mut reader = match backend.strike_reader().await {
            Ok(reader) => reader,
            Err(error) => {
                tracing::warn!(%docket, %error, "cannot follow the strikes; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let block = strikes.is_loaded().then_some(BLOCK);
            match reader.read(after, block, READ_BATCH).await {
                Ok(entries) => {
                    pause = Duration::from_millis(100);
                    let caught_up = entries.len() < READ_BATCH;
                    for (id, instruction) in entries {
                        match instruction {
                            Ok(instruction) => {
                                if !matches!(instruction, Instruction::Reset) {
                                    tracing::info!(%docket, entry = %id, ?instruction, "strike instruction");
                                }
                                strikes.apply(id, instruction);
                            }
                            Err(problem) => {
                                tracing::warn!(%docket, entry = %id, %problem, "skipping a malformed strike instruction");
                            }
                        }
                        after = Some(id);
                    }
                    if caught_up {
                        strikes.mark_loaded();
                    }
                }
                Err(error) => {
                    tracing::warn!(%docket, %error, "lost the strikes stream; reconnecting");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                    break;
                }
            }
        }
    }
}
