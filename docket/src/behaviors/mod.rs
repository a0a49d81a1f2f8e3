//! Behaviours: what happens around a run. Before a run, each behaviour may admit, defer
//! or cancel it; after it, each may plan what follows a failure or a completion — a
//! retry, the next run of a perpetual task, or nothing.
//!
//! Everything docket does around a run goes through this one door: the built-in retry
//! and perpetual/cron behaviours, the admission rules a task declares
//! ([`admission`]: concurrency limits, cooldowns, rate limits, debounce) and the
//! behaviours you write are all [`Behavior`]s, asked in turn.
//!
//! ```
//! use std::time::Duration;
//! use docket::behaviors::{Admission, Behavior, Plan};
//! use docket::{Execution, TaskError};
//!
//! /// Retries any failure whose message says the database was busy, once, after 1 s;
//! /// and keeps runs out of the nightly maintenance window.
//! struct BusyDatabase;
//!
//! impl Behavior for BusyDatabase {
//!     async fn admit(&self, _execution: &Execution) -> Admission {
//!         if in_maintenance() {
//!             Admission::Defer(Duration::from_secs(60))
//!         } else {
//!             Admission::Run
//!         }
//!     }
//!
//!     async fn on_failure(&self, execution: &Execution, error: &TaskError, plan: &mut Plan) {
//!         if error.message().contains("busy") && execution.attempt() == 1 {
//!             plan.retry_after(Duration::from_secs(1));
//!         }
//!     }
//! }
//! # fn in_maintenance() -> bool { false }
//!
//! # async fn build(docket: docket::Docket) -> docket::Result<()> {
//! let worker = docket::Worker::builder(docket).behavior(BusyDatabase).build()?;
//! # Ok(()) }
//! ```

pub mod admission;
pub(crate) mod cron;
mod perpetual;
mod retry;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt;

pub(crate) use perpetual::PerpetualBehavior;
pub(crate) use retry::RetryBehavior;

use crate::backend::Reschedule;
use crate::execution::Execution;
use crate::model::{TaskError, TaskOptions, When};

/// A behaviour around every run of a worker: admission before, plans after.
///
/// Every hook has a default that does nothing, so a behaviour implements only what it
/// needs, with plain `async fn`s. Register one with
/// [`WorkerBuilder::behavior`](crate::WorkerBuilder::behavior). The worker asks, in
/// order: the built-in retry and perpetual/cron behaviours, yours in the order
/// registered, then the admission rules the task declared (cooldown, rate limit,
/// concurrency limit — last, since each takes what it admits: a window, a place in the
/// rate, a slot). Each planning hook sees the plan the ones before it made.
pub trait Behavior: Send + Sync + 'static {
    /// Decides whether the run may start now; the first behaviour that does not admit
    /// it decides.
    fn admit(&self, execution: &Execution) -> impl Future<Output = Admission> + Send {
        let _ = execution;
        async { Admission::Run }
    }

    /// Called after a run failed (not when it was cancelled); may change `plan`.
    fn on_failure(
        &self,
        execution: &Execution,
        error: &TaskError,
        plan: &mut Plan,
    ) -> impl Future<Output = ()> + Send {
        let _ = (execution, error, plan);
        async {}
    }

    /// Called after a run completed; may change `plan`.
    fn on_completion(
        &self,
        execution: &Execution,
        plan: &mut Plan,
    ) -> impl Future<Output = ()> + Send {
        let _ = (execution, plan);
        async {}
    }
}

/// What [`Behavior::admit`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Run it now.
    Run,
    /// Put it back, due again after this long (same attempt; it shows as SCHEDULED).
    Defer(Duration),
    /// Do not run it: the record ends CANCELLED, and the reason is logged.
    Cancel(String),
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A [`Behavior`] behind a pointer: the hooks' futures boxed, which a trait with
/// `async fn`s cannot be by itself.
trait ErasedBehavior: Send + Sync {
    fn admit<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Admission>;
    fn on_failure<'a>(
        &'a self,
        execution: &'a Execution,
        error: &'a TaskError,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()>;
    fn on_completion<'a>(
        &'a self,
        execution: &'a Execution,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()>;
}

impl<B: Behavior> ErasedBehavior for B {
    fn admit<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Admission> {
        Box::pin(Behavior::admit(self, execution))
    }

    fn on_failure<'a>(
        &'a self,
        execution: &'a Execution,
        error: &'a TaskError,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(Behavior::on_failure(self, execution, error, plan))
    }

    fn on_completion<'a>(
        &'a self,
        execution: &'a Execution,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(Behavior::on_completion(self, execution, plan))
    }
}

/// The behaviours a worker asks about one task's runs, in order.
#[derive(Clone, Default)]
pub(crate) struct Behaviors(Vec<Arc<dyn ErasedBehavior>>);

impl std::fmt::Debug for Behaviors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Behaviors({})", self.0.len())
    }
}

/// A behaviour, ready to be asked by any number of workers and tasks.
#[derive(Clone)]
pub(crate) struct SharedBehavior(Arc<dyn ErasedBehavior>);

impl SharedBehavior {
    pub(crate) fn new(behavior: impl Behavior) -> Self {
        Self(Arc::new(behavior))
    }
}

impl Behaviors {
    /// What a worker asks about the runs of a task with `options`: the built-in retry
    /// and perpetual behaviours, the worker's own (`added`), then the admission rules
    /// the task declared, made for it. A slot of a concurrency limit is held for
    /// `lease`; a rule the store cannot answer defers the run by `retry_in`.
    pub(crate) fn for_task(
        added: &[SharedBehavior],
        options: &TaskOptions,
        lease: Duration,
        retry_in: Duration,
    ) -> Self {
        let mut all: Vec<Arc<dyn ErasedBehavior>> =
            vec![Arc::new(RetryBehavior), Arc::new(PerpetualBehavior)];
        all.extend(added.iter().map(|behavior| behavior.0.clone()));
        all.extend(admission::rules(options, lease, retry_in));
        Self(all)
    }

    /// Asks each behaviour whether the run may start; the first that does not admit it
    /// decides. A behaviour that panics is taken to admit the run.
    pub(crate) async fn admit(&self, execution: &Execution) -> Admission {
        for behavior in &self.0 {
            let admission = AssertUnwindSafe(behavior.admit(execution))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(key = %execution.key(), "a behaviour panicked deciding admission; running the task");
                    Admission::Run
                });
            if admission != Admission::Run {
                return admission;
            }
        }
        Admission::Run
    }

    /// What follows a run that failed with `error` (or completed, when `None`), as the
    /// behaviours plan it in turn. A behaviour that panics is ignored.
    pub(crate) async fn plan(&self, execution: &Execution, error: Option<&TaskError>) -> Plan {
        let mut plan = Plan::default();
        for behavior in &self.0 {
            let hook = match error {
                Some(error) => behavior.on_failure(execution, error, &mut plan),
                None => behavior.on_completion(execution, &mut plan),
            };
            if AssertUnwindSafe(hook).catch_unwind().await.is_err() {
                tracing::error!(key = %execution.key(), "a behaviour panicked planning what follows a run; ignored");
            }
        }
        plan
    }
}

/// What follows a run: nothing (it ends), a retry, or another run.
///
/// A retry is the next attempt of the same call (attempt + 1); another run starts over
/// at attempt 1 (a perpetual task's next run). Either is scheduled atomically with the
/// end of this run, under the same key and a new generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    next: Option<(Kind, When)>,
    args: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Retry,
    Again,
}

impl Plan {
    /// Retries after `delay`.
    pub fn retry_after(&mut self, delay: Duration) {
        self.next = Some((Kind::Retry, When::After(delay)));
    }

    /// Retries at `when`.
    pub fn retry_at(&mut self, when: SystemTime) {
        self.next = Some((Kind::Retry, When::At(when)));
    }

    /// Runs the call again (attempt 1) after `delay`.
    pub fn run_again_after(&mut self, delay: Duration) {
        self.next = Some((Kind::Again, When::After(delay)));
    }

    /// Runs the call again (attempt 1) at `when`.
    pub fn run_again_at(&mut self, when: SystemTime) {
        self.next = Some((Kind::Again, When::At(when)));
    }

    /// Runs the call again (attempt 1) `every` after this run started, or at once if
    /// that has passed: a start-to-start cadence.
    pub fn run_again_every(&mut self, every: Duration) {
        self.next = Some((Kind::Again, When::AfterStart(every)));
    }

    /// Nothing follows: the run ends here.
    pub fn end(&mut self) {
        self.next = None;
    }

    /// A retry is planned.
    pub fn is_retry(&self) -> bool {
        matches!(self.next, Some((Kind::Retry, _)))
    }

    /// Anything is planned.
    pub fn is_rescheduled(&self) -> bool {
        self.next.is_some()
    }

    /// Retries at the time a run chose (a forced retry).
    pub(crate) fn retry(&mut self, when: When) {
        self.next = Some((Kind::Retry, when));
    }

    /// Runs the call again at the time a run chose.
    pub(crate) fn run_again(&mut self, when: When) {
        self.next = Some((Kind::Again, when));
    }

    /// The next run takes these arguments (a JSON object) instead of the current ones.
    pub(crate) fn set_args(&mut self, args: String) {
        self.args = Some(args);
    }

    /// The reschedule for the backend, from a run of `attempt`.
    pub(crate) fn into_reschedule(
        self,
        attempt: u32,
        traceparent: Option<String>,
    ) -> Option<Reschedule> {
        let (kind, due) = self.next?;
        Some(Reschedule {
            due,
            attempt: match kind {
                Kind::Retry => attempt.saturating_add(1),
                Kind::Again => 1,
            },
            args: self.args,
            traceparent,
            wait: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_become_reschedules() {
        let mut plan = Plan::default();
        assert!(!plan.is_rescheduled());
        assert_eq!(plan.clone().into_reschedule(1, None), None);
        plan.retry_after(Duration::from_secs(5));
        assert!(plan.is_retry());
        let retry = plan.clone().into_reschedule(2, None).unwrap();
        assert_eq!(retry.attempt, 3);
        assert_eq!(retry.due, When::After(Duration::from_secs(5)));
        plan.run_again_every(Duration::from_mins(1));
        plan.set_args("{\"n\":2}".into());
        let again = plan.clone().into_reschedule(4, Some("tp".into())).unwrap();
        assert_eq!(again.attempt, 1);
        assert_eq!(again.due, When::AfterStart(Duration::from_mins(1)));
        assert_eq!(again.args.as_deref(), Some("{\"n\":2}"));
        assert_eq!(again.traceparent.as_deref(), Some("tp"));
        plan.end();
        assert!(!plan.is_rescheduled());
    }
}
