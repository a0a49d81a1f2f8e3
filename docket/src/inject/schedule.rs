//! The injectables a running task uses to steer what follows it: [`Perpetual`] (its
//! chain's next run), [`Timeout`] (its time budget), and the [`ForcedRetry`] that
//! [`Retry::after`](crate::Retry::after) returns.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::FromExecution;
use crate::error::{Error, Result};
use crate::execution::{Execution, RunControl};
use crate::model::When;
use crate::task::Task;

/// The error a task returns to force a retry: made by
/// [`Retry::after`](crate::Retry::after) or [`Retry::at`](crate::Retry::at), which also
/// tell the worker when.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry requested by the task")]
pub struct ForcedRetry;

/// A running task's say over its perpetual chain: stop it, move the next run, or change
/// the next run's arguments.
///
/// ```
/// use std::time::Duration;
/// use docket::Perpetual;
///
/// #[docket::task(perpetual = "1m")]
/// async fn poll_feed(cursor: u64, perpetual: Perpetual) -> docket::Result<()> {
///     let next_cursor = cursor + 10;
///     if next_cursor > 1_000 {
///         perpetual.cancel(); // the feed is done: no next run
///     } else {
///         perpetual.perpetuate(PollFeed::new(next_cursor))?;
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Perpetual {
    control: Option<Arc<RunControl>>,
    function: String,
}

impl Perpetual {
    /// Ends the chain: no run follows this one.
    pub fn cancel(&self) {
        if let Some(control) = &self.control {
            control.perpetual().cancelled = true;
        }
    }

    /// The next run is due `delay` after this one ends, instead of on the cadence.
    pub fn after(&self, delay: Duration) {
        self.choose(When::After(delay));
    }

    /// The next run is due at `when`.
    pub fn at(&self, when: SystemTime) {
        self.choose(When::At(when));
    }

    /// The next run takes these arguments.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `task` is a call to another task, and
    /// [`Error::Serialize`] when its arguments cannot be serialized.
    // Takes the call by value, as `Docket::add` does: `perpetuate(PollFeed::new(n))`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn perpetuate<T: Task>(&self, task: T) -> Result<()> {
        if T::NAME != self.function {
            return Err(Error::InvalidOption {
                name: "perpetuate",
                value: T::NAME.to_owned(),
                reason: format!("a run of `{}` can only perpetuate itself", self.function),
            });
        }
        let args = serde_json::to_string(&task).map_err(|source| Error::Serialize {
            function: T::NAME.to_owned(),
            source,
        })?;
        if let Some(control) = &self.control {
            control.perpetual().args = Some(args);
        }
        Ok(())
    }

    fn choose(&self, when: When) {
        if let Some(control) = &self.control {
            let mut choice = control.perpetual();
            choice.cancelled = false;
            choice.next = Some(when);
        }
    }
}

impl FromExecution for Perpetual {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> std::result::Result<Self, Self::Rejection> {
        Ok(Self {
            control: execution.control().cloned(),
            function: execution.function().to_owned(),
        })
    }
}

/// The run's time budget: how much is left, and more when the work needs it.
///
/// ```
/// use std::time::Duration;
/// use docket::Timeout;
///
/// #[docket::task(timeout = "30s")]
/// async fn export(rows: u64, timeout: Timeout) {
///     for _ in 0..rows {
///         if timeout.remaining().is_some_and(|left| left < Duration::from_secs(5)) {
///             timeout.extend(Duration::from_secs(30));
///         }
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Timeout {
    control: Option<Arc<RunControl>>,
}

impl Timeout {
    /// Time left before the run is stopped, or `None` when it has no timeout.
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.control.as_ref()?.deadline()?;
        Some(deadline.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Moves the deadline `by` later. Returns false when the run has no timeout.
    pub fn extend(&self, by: Duration) -> bool {
        self.control.as_ref().is_some_and(|c| c.extend(by))
    }
}

impl FromExecution for Timeout {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> std::result::Result<Self, Self::Rejection> {
        Ok(Self {
            control: execution.control().cloned(),
        })
    }
}
