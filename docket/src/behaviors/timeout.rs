//! [`Timeout`]: a running task's view of its time budget (`timeout = "..."`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::RunControl;
use crate::execution::Execution;
use crate::inject::FromExecution;

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

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(Self {
            control: execution.control().cloned(),
        })
    }
}
