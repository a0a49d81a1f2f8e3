//! The built-in injectables that describe the run: [`TaskKey`], [`Retry`], [`Progress`].

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{ForcedRetry, FromExecution};
use crate::backend::ProgressUpdate;
use crate::error::Result;
use crate::execution::{Execution, RunControl};
use crate::model::When;

/// The key of the running task.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey(String);

impl TaskKey {
    /// The key as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for TaskKey {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromExecution for TaskKey {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(Self(execution.key().to_owned()))
    }
}

/// The attempt a run is, and how many it may have.
///
/// ```
/// use docket::Retry;
///
/// #[docket::task(retry = Fixed(3, 1s))]
/// async fn flaky(retry: Retry) -> Result<(), String> {
///     if retry.attempt() < 3 {
///         return Err(format!("attempt {} of {:?} failed", retry.attempt(), retry.attempts()));
///     }
///     Ok(())
/// }
/// ```
///
/// A task can also force a retry with a delay of its choosing, whatever its policy says
/// (mind [`is_last`](Self::is_last) to avoid retrying forever):
///
/// ```
/// use std::time::Duration;
/// use docket::Retry;
///
/// #[docket::task]
/// async fn poll_export(export_id: u64, retry: Retry) -> anyhow::Result<()> {
///     let ready = export_id % 2 == 0;
///     if !ready && retry.attempt() < 10 {
///         return Err(retry.after(Duration::from_secs(30)).into());
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Retry {
    attempt: u32,
    attempts: Option<u32>,
    control: Option<Arc<RunControl>>,
}

impl Retry {
    /// This run's attempt: 1 for the first run.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Attempts in total, or `None` when the task retries forever.
    pub fn attempts(&self) -> Option<u32> {
        self.attempts
    }

    /// Attempts left after this one, or `None` when unlimited.
    pub fn remaining(&self) -> Option<u32> {
        self.attempts.map(|n| n.saturating_sub(self.attempt))
    }

    /// This is the last attempt.
    pub fn is_last(&self) -> bool {
        self.remaining() == Some(0)
    }

    /// Retries this call `delay` after the run ends, as attempt + 1, whatever the run
    /// returns and whatever the policy says. Returns the error to end the run with.
    pub fn after(&self, delay: Duration) -> ForcedRetry {
        if let Some(control) = &self.control {
            control.force_retry(When::After(delay));
        }
        ForcedRetry
    }

    /// Retries this call at `when` (see [`after`](Self::after)).
    pub fn at(&self, when: SystemTime) -> ForcedRetry {
        if let Some(control) = &self.control {
            control.force_retry(When::At(when));
        }
        ForcedRetry
    }
}

impl FromExecution for Retry {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(Self {
            attempt: execution.attempt(),
            attempts: execution
                .options()
                .map_or(Some(1), |options| options.retry.attempts()),
            control: execution.control().cloned(),
        })
    }
}

/// Reports a running task's progress to everyone watching it.
///
/// Updates are stored in `{docket}:progress:{key}` (deleted when the run ends) and
/// published live; on a fire-and-forget docket (`execution_ttl = 0`) they are dropped.
///
/// ```
/// use docket::Progress;
///
/// #[docket::task]
/// async fn import_rows(rows: Vec<String>, progress: Progress) -> docket::Result<usize> {
///     progress.set_total(rows.len() as u64).await?;
///     for _row in &rows {
///         progress.increment(1).await?;
///     }
///     progress.set_message("done").await?;
///     Ok(rows.len())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Progress {
    execution: Execution,
}

impl Progress {
    /// Sets the total units of work.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn set_total(&self, total: u64) -> Result<()> {
        self.report(ProgressUpdate::SetTotal(total)).await
    }

    /// Adds `amount` units done.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn increment(&self, amount: u64) -> Result<()> {
        self.report(ProgressUpdate::Increment(amount)).await
    }

    /// Sets a human-readable status message.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn set_message(&self, message: impl Into<String>) -> Result<()> {
        self.report(ProgressUpdate::SetMessage(message.into()))
            .await
    }

    async fn report(&self, update: ProgressUpdate) -> Result<()> {
        let core = self.execution.core();
        if core.execution_ttl.is_zero() {
            return Ok(());
        }
        core.backend
            .report_progress(self.execution.key(), update)
            .await
    }
}

impl FromExecution for Progress {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(Self {
            execution: execution.clone(),
        })
    }
}
