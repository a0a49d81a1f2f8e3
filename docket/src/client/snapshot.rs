//! What `snapshot()` and `workers()` return.

use std::time::SystemTime;

use super::Docket;
use crate::error::Result;
use crate::execution::ExecutionRecord;

/// A worker seen through its heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActiveWorker {
    /// The worker's name.
    pub name: String,
    /// Its last heartbeat.
    pub last_seen: SystemTime,
    /// The tasks it can run.
    pub tasks: Vec<String>,
}

/// A call dead-lettered after it was delivered `max_deliveries` times without finishing
/// (its workers kept dying). Retry it with
/// [`Docket::retry_dead_letter`](crate::Docket::retry_dead_letter) or forget it with
/// [`Docket::purge_dead_letters`](crate::Docket::purge_dead_letters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The task key.
    pub key: String,
    /// The task's wire name.
    pub function: String,
    /// The arguments, a JSON object.
    pub args: String,
    /// Why it was dead-lettered.
    pub error: String,
    /// When it was dead-lettered (RFC 3339).
    pub dead_at: String,
}

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
    live.queued.sort_by_key(|r| r.when);
    live.scheduled.sort_by_key(|r| r.when);
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
    let mut workers: Vec<ActiveWorker> = docket
        .backend()
        .workers(task)
        .await?
        .into_iter()
        .map(|entry| ActiveWorker {
            name: entry.name,
            last_seen: entry.last_seen,
            tasks: entry.tasks,
        })
        .collect();
    workers.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(workers)
}
