//! Workers as others see them: [`ActiveWorker`] through its heartbeats, [`WorkerInfo`]
//! from inside a run.

use std::sync::Arc;
use std::time::SystemTime;

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

/// The worker running a task: inject it as a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Shared: every run's execution carries a copy.
    name: Arc<str>,
    concurrency: usize,
}

impl WorkerInfo {
    pub(crate) fn new(name: Arc<str>, concurrency: usize) -> Self {
        Self { name, concurrency }
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many tasks the worker runs at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}
