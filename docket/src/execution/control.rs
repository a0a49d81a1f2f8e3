//! [`RunControl`]: the state one run shares with its worker, behind the handle the worker
//! gives the run's [`Execution`](super::Execution).
//!
//! What a running task says through its injected handles (a forced retry, the perpetual
//! chain's next step, an extended deadline) and what the worker's admission rules
//! decided (the concurrency slot held or awaited) are written here during the run and
//! read by the worker when it records how the run ended. What the worker gives every run
//! (its docket, its shared values: opaque here) and the values `Depends<T>` resolved once
//! live here too.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::Slot;
use crate::model::When;

/// What `Perpetual` asked for.
#[derive(Debug, Default)]
pub(crate) struct PerpetualChoice {
    pub cancelled: bool,
    pub next: Option<When>,
    /// New arguments (a JSON object) for the next run.
    pub args: Option<String>,
}

/// What the concurrency limit decided for the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum SlotUse {
    /// The task has no concurrency limit (or it was not asked yet).
    #[default]
    None,
    /// The run holds a slot: renewed while it runs, released when it ends.
    Held(Slot),
    /// No slot was free: the call waits for one instead of running.
    Awaited(Slot),
}

/// One run's shared control block (see the module docs).
#[derive(Default)]
pub(crate) struct RunControl {
    forced_retry: Mutex<Option<When>>,
    perpetual: Mutex<PerpetualChoice>,
    deadline: Mutex<Option<Instant>>,
    slot: Mutex<SlotUse>,
    /// What the worker gives every run, for the injectables that need it.
    worker: Option<Arc<dyn Any + Send + Sync>>,
    /// Values resolved once for the run, by type.
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RunControl {
    /// The control block of a run of a worker that gives its runs `worker`.
    pub(crate) fn new(worker: Arc<dyn Any + Send + Sync>) -> Self {
        Self {
            worker: Some(worker),
            ..Self::default()
        }
    }

    /// What the worker gives its runs, if it is a `T`.
    pub(crate) fn worker<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.worker.as_deref()?.downcast_ref()
    }

    /// Starts the run's time budget, if it has one.
    pub(crate) fn start_clock(&self, timeout: Option<Duration>) {
        *lock(&self.deadline) = timeout.map(|t| Instant::now() + t);
    }

    pub(crate) fn force_retry(&self, when: When) {
        *lock(&self.forced_retry) = Some(when);
    }

    pub(crate) fn forced_retry(&self) -> Option<When> {
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

    pub(crate) fn set_slot(&self, slot: SlotUse) {
        *lock(&self.slot) = slot;
    }

    pub(crate) fn slot(&self) -> SlotUse {
        lock(&self.slot).clone()
    }

    /// The value of type `T` resolved for this run, if any.
    pub(crate) fn value<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        lock(&self.values)
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
            .cloned()
    }

    /// Keeps a value of type `T` resolved for this run (replacing any it had).
    pub(crate) fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) {
        lock(&self.values).insert(TypeId::of::<T>(), Arc::new(value));
    }
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("forced_retry", &self.forced_retry())
            .field("deadline", &self.deadline())
            .field("slot", &self.slot())
            .finish_non_exhaustive()
    }
}
