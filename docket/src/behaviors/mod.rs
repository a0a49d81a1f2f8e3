//! Behaviours: what happens around a run (SPEC §6). Before a run, each behaviour may
//! admit, defer or cancel it; after it, each may plan what follows a failure or a
//! completion — a retry, the next run of a perpetual task, or nothing.
//!
//! The built-in retry and perpetual/cron behaviours are written against the same
//! [`Behavior`] trait users implement for their own:
//!
//! ```
//! use docket::behaviors::{Behavior, BoxFuture, Plan};
//! use docket::{Execution, TaskError};
//!
//! /// Retries any failure whose message says the database was busy, once, after 1 s.
//! struct RetryWhenBusy;
//!
//! impl Behavior for RetryWhenBusy {
//!     fn on_failure<'a>(
//!         &'a self,
//!         execution: &'a Execution,
//!         error: &'a TaskError,
//!         plan: &'a mut Plan,
//!     ) -> BoxFuture<'a, ()> {
//!         Box::pin(async move {
//!             if error.message().contains("busy") && execution.attempt() == 1 {
//!                 plan.retry_after(std::time::Duration::from_secs(1));
//!             }
//!         })
//!     }
//! }
//!
//! # async fn build(docket: docket::Docket) -> docket::Result<()> {
//! let worker = docket::Worker::builder(docket).behavior(RetryWhenBusy).build()?;
//! # Ok(()) }
//! ```

mod automatic;
mod control;
pub(crate) mod cron;
mod perpetual;
mod retry;
mod timeout;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

pub(crate) use automatic::seed_automatic;
pub(crate) use control::{Chosen, RunControl};
pub use perpetual::Perpetual;
pub(crate) use perpetual::PerpetualBehavior;
pub use retry::ForcedRetry;
pub(crate) use retry::RetryBehavior;
pub use timeout::Timeout;

use crate::backend::{NextDue, Reschedule};
use crate::error::TaskError;
use crate::execution::Execution;

/// The future a behaviour's hook returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A behaviour around every run of a worker: admission before, plans after.
///
/// Every hook has a default that does nothing, so a behaviour implements only what it
/// needs. Register one with [`WorkerBuilder::behavior`](crate::WorkerBuilder::behavior);
/// the built-in ones (retry, then perpetual and cron) run first, yours after them in
/// the order registered, each seeing the plan the ones before it made.
pub trait Behavior: Send + Sync + 'static {
    /// Decides whether the run may start now.
    fn admit<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Admission> {
        let _ = execution;
        Box::pin(async { Admission::Run })
    }

    /// Called after a run failed (not when it was cancelled); may change `plan`.
    fn on_failure<'a>(
        &'a self,
        execution: &'a Execution,
        error: &'a TaskError,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        let _ = (execution, error, plan);
        Box::pin(async {})
    }

    /// Called after a run completed; may change `plan`.
    fn on_completion<'a>(
        &'a self,
        execution: &'a Execution,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        let _ = (execution, plan);
        Box::pin(async {})
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

/// When a planned run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    After(Duration),
    At(SystemTime),
    AfterStart(Duration),
}

impl Due {
    fn next_due(self) -> NextDue {
        match self {
            Self::After(delay) => NextDue::After(delay),
            Self::At(at) => NextDue::At(at),
            Self::AfterStart(every) => NextDue::AfterStart(every),
        }
    }
}

/// What follows a run: nothing (it ends), a retry, or another run.
///
/// A retry is the next attempt of the same call (attempt + 1); another run starts over
/// at attempt 1 (a perpetual task's next run). Either is scheduled atomically with the
/// end of this run, under the same key and a new generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    next: Option<(Kind, Due)>,
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
        self.next = Some((Kind::Retry, Due::After(delay)));
    }

    /// Retries at `when`.
    pub fn retry_at(&mut self, when: SystemTime) {
        self.next = Some((Kind::Retry, Due::At(when)));
    }

    /// Runs the call again (attempt 1) after `delay`.
    pub fn run_again_after(&mut self, delay: Duration) {
        self.next = Some((Kind::Again, Due::After(delay)));
    }

    /// Runs the call again (attempt 1) at `when`.
    pub fn run_again_at(&mut self, when: SystemTime) {
        self.next = Some((Kind::Again, Due::At(when)));
    }

    /// Runs the call again (attempt 1) `every` after this run started, or at once if
    /// that has passed: a start-to-start cadence.
    pub fn run_again_every(&mut self, every: Duration) {
        self.next = Some((Kind::Again, Due::AfterStart(every)));
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
            due: due.next_due(),
            attempt: match kind {
                Kind::Retry => attempt.saturating_add(1),
                Kind::Again => 1,
            },
            args: self.args,
            traceparent,
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
        assert_eq!(retry.due, NextDue::After(Duration::from_secs(5)));
        plan.run_again_every(Duration::from_mins(1));
        plan.set_args("{\"n\":2}".into());
        let again = plan.clone().into_reschedule(4, Some("tp".into())).unwrap();
        assert_eq!(again.attempt, 1);
        assert_eq!(again.due, NextDue::AfterStart(Duration::from_mins(1)));
        assert_eq!(again.args.as_deref(), Some("{\"n\":2}"));
        assert_eq!(again.traceparent.as_deref(), Some("tp"));
        plan.end();
        assert!(!plan.is_rescheduled());
    }
}
