//! What `snapshot()` and `workers()` return.

use std::time::SystemTime;

use super::Docket;
use crate::error::Result;
use crate::model::{ActiveWorker, DeadLetter, ExecutionRecord};

/// Everything live in a docket at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Snapshot {
    /// When it was taken, by the docket's clock.
    pub taken: SystemTime,
    /// Due, waiting for a worker, oldest first.
    pub queued: Vec<ExecutionRecord>,
    /// Parked until their due time, soonest first.
    pub scheduled: Vec<ExecutionRecord>,
    /// Being run by a worker.
    pub running: Vec<ExecutionRecord>,
    /// Workers seen recently.
    pub workers: Vec<ActiveWorker>,
    /// Calls dead-lettered and not yet retried or purged.
    pub dead_letters: Vec<DeadLetter>,
}

impl Snapshot {
    /// Tasks queued, scheduled or running.
    pub fn total_tasks(&self) -> usize {
        self.queued.len() + self.scheduled.len() + self.running.len()
    }
}

pub(super) async fn take(docket: &Docket) -> Result<Snapshot> {
    let backend = docket.backend();
    let taken = backend.now().await?;
    let mut live = backend.live().await?;
    live.queued.sort_by_key(|r| r.message.when);
    live.scheduled.sort_by_key(|r| r.message.when);
    live.running.sort_by_key(|r| r.started_at);
    Ok(Snapshot {
        taken,
        queued: live.queued,
        scheduled: live.scheduled,
        running: live.running,
        workers: workers(docket, None).await?,
        dead_letters: backend.dead_letters().await?,
    })
}

pub(super) async fn workers(docket: &Docket, task: Option<&str>) -> Result<Vec<ActiveWorker>> {
    let mut workers = docket.backend().workers(task).await?;
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(workers)
}
