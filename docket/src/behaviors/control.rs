//! What a running task tells its worker through injected handles: a forced retry, the
//! perpetual chain's next step, an extended deadline, resolved dependencies.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// A time chosen from inside a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chosen {
    After(Duration),
    At(SystemTime),
}

/// What `Perpetual` asked for.
#[derive(Debug, Default)]
pub(crate) struct PerpetualChoice {
    pub cancelled: bool,
    pub next: Option<Chosen>,
    /// New arguments (a JSON object) for the next run.
    pub args: Option<String>,
}

/// One run's shared control block (see the module docs).
#[derive(Default)]
pub(crate) struct RunControl {
    forced_retry: Mutex<Option<Chosen>>,
    perpetual: Mutex<PerpetualChoice>,
    deadline: Mutex<Option<Instant>>,
    /// `Depends<T>` values resolved in this run, by type.
    resolved: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunControl {
    /// Starts the run's time budget, if it has one.
    pub(crate) fn start_clock(&self, timeout: Option<Duration>) {
        *lock(&self.deadline) = timeout.map(|t| Instant::now() + t);
    }

    pub(crate) fn force_retry(&self, when: Chosen) {
        *lock(&self.forced_retry) = Some(when);
    }

    pub(crate) fn forced_retry(&self) -> Option<Chosen> {
        *lock(&self.forced_retry)
    }

    pub(crate) fn perpetual(&self) -> MutexGuard<'_, PerpetualChoice> {
        lock(&self.perpetual)
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        *lock(&self.deadline)
    }

    /// Pushes the deadline back by `by`; false when the run has no deadline.
    pub(crate) fn extend(&self, by: Duration) -> bool {
        let mut deadline = lock(&self.deadline);
        match deadline.as_mut() {
            Some(at) => {
                *at += by;
                true
            }
            None => false,
        }
    }

    pub(crate) fn cached<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.resolved)
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }

    pub(crate) fn cache<T: Clone + Send + Sync + 'static>(&self, value: T) {
        lock(&self.resolved).insert(TypeId::of::<T>(), Arc::new(value));
    }
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("forced_retry", &self.forced_retry())
            .field("deadline", &self.deadline())
            .finish_non_exhaustive()
    }
}
