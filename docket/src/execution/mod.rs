//! [`Execution`]: one scheduled run of a task, seen from the producer or from inside the run.

mod state;
mod wait;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use serde::de::DeserializeOwned;

pub use state::{Disposition, Event, ExecutionRecord, ExecutionState, ProgressState};

use crate::behaviors::RunControl;
use crate::client::Docket;
use crate::error::Result;
use crate::inject::{WorkerInfo, WorkerValues};
use crate::task::TaskOptions;

/// One scheduled run of a task: what `add` returns, and what a running task can inject.
///
/// Cheap to clone. The producer side uses it to follow the run
/// ([`state`](Self::state), [`result`](Self::result), [`subscribe`](Self::subscribe));
/// inside a run it says which call is running ([`attempt`](Self::attempt),
/// [`redelivered`](Self::redelivered), [`worker`](Self::worker)).
///
/// ```
/// # #[docket::task] async fn add_numbers(a: i64, b: i64) -> i64 { a + b }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> docket::Result<()> {
/// let docket = docket::Docket::connect("doc-execution", "memory://doc-execution").await?;
/// let execution = docket.add(AddNumbers::new(2, 3)).key("sum").await?;
/// assert_eq!(execution.key(), "sum");
/// assert_eq!(execution.state().await?, docket::ExecutionState::Queued);
///
/// docket::Worker::builder(docket.clone()).build()?.run_until_finished().await?;
/// assert_eq!(execution.result::<i64>().await?, 5);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Execution {
    inner: Arc<Inner>,
}

struct Inner {
    docket: Docket,
    parts: ExecutionParts,
}

/// What only a running execution knows.
#[derive(Clone)]
pub(crate) struct RunInfo {
    pub worker: WorkerInfo,
    pub options: TaskOptions,
    pub redelivered: bool,
    pub control: Arc<RunControl>,
    pub values: Arc<WorkerValues>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution")
            .field("docket", &self.inner.docket.name())
            .field("key", &self.inner.parts.key)
            .field("function", &self.inner.parts.function)
            .field("attempt", &self.inner.parts.attempt)
            .field("generation", &self.inner.parts.generation)
            .field("disposition", &self.inner.parts.disposition)
            .finish_non_exhaustive()
    }
}

/// The parts an [`Execution`] is made of (crate-internal constructor input).
pub(crate) struct ExecutionParts {
    pub key: String,
    pub function: String,
    pub args: String,
    pub when: SystemTime,
    pub attempt: u32,
    pub generation: u64,
    pub disposition: Disposition,
    pub run: Option<RunInfo>,
}

impl Execution {
    pub(crate) fn new(docket: Docket, parts: ExecutionParts) -> Self {
        Self {
            inner: Arc::new(Inner { docket, parts }),
        }
    }

    /// The task key.
    pub fn key(&self) -> &str {
        &self.inner.parts.key
    }

    /// The task's wire name.
    pub fn function(&self) -> &str {
        &self.inner.parts.function
    }

    /// The arguments, a JSON object keyed by parameter name.
    pub fn args(&self) -> &str {
        &self.inner.parts.args
    }

    /// When the run is (or was) due.
    pub fn when(&self) -> SystemTime {
        self.inner.parts.when
    }

    /// The attempt: 1 for the first run, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.inner.parts.attempt
    }

    /// The key's generation this execution belongs to; every schedule increments it.
    pub fn generation(&self) -> u64 {
        self.inner.parts.generation
    }

    /// What `add` / `replace` did with the call.
    pub fn disposition(&self) -> Disposition {
        self.inner.parts.disposition
    }

    /// Inside a run: whether this delivery was taken over from a worker that stopped.
    pub fn redelivered(&self) -> bool {
        self.inner
            .parts
            .run
            .as_ref()
            .is_some_and(|run| run.redelivered)
    }

    /// Inside a run: the worker running it.
    pub fn worker(&self) -> Option<&WorkerInfo> {
        self.inner.parts.run.as_ref().map(|run| &run.worker)
    }

    /// Inside a run: the options the task declared.
    pub fn options(&self) -> Option<&TaskOptions> {
        self.inner.parts.run.as_ref().map(|run| &run.options)
    }

    /// Inside a run: the worker's shared values.
    pub(crate) fn worker_values(&self) -> Option<&Arc<WorkerValues>> {
        self.inner.parts.run.as_ref().map(|run| &run.values)
    }

    /// Inside a run: what injected handles tell the worker.
    pub(crate) fn control(&self) -> Option<&Arc<RunControl>> {
        self.inner.parts.run.as_ref().map(|run| &run.control)
    }

    /// The docket this execution belongs to.
    pub fn docket(&self) -> &Docket {
        &self.inner.docket
    }

    /// The stored record of the key, or `None` when it has expired (or never existed).
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn record(&self) -> Result<Option<ExecutionRecord>> {
        self.inner
            .docket
            .backend()
            .record(&self.inner.parts.key)
            .await
    }

    /// The key's current state.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when no record exists (it expired
    /// after `execution_ttl`, or the docket runs fire-and-forget), or a backend error.
    pub async fn state(&self) -> Result<ExecutionState> {
        match self.record().await? {
            Some(record) => Ok(record.state),
            None => Err(crate::Error::NotFound(self.inner.parts.key.clone())),
        }
    }

    /// The current progress of the run, if it reported any.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn progress(&self) -> Result<Option<ProgressState>> {
        self.inner
            .docket
            .backend()
            .progress(&self.inner.parts.key)
            .await
    }

    /// Waits for the run to end and returns its result.
    ///
    /// Follows the key's latest generation: if the call was replaced, this is the
    /// replacement's result.
    ///
    /// # Errors
    /// [`Error::TaskFailed`](crate::Error::TaskFailed) when the run failed,
    /// [`Error::Cancelled`](crate::Error::Cancelled) when it was cancelled,
    /// [`Error::ResultsDisabled`](crate::Error::ResultsDisabled) at once on a
    /// fire-and-forget docket, [`Error::NotFound`](crate::Error::NotFound) when the record
    /// expired, [`Error::Deserialize`](crate::Error::Deserialize) when the stored value is
    /// not a `T`, or a backend error.
    pub async fn result<T: DeserializeOwned>(&self) -> Result<T> {
        wait::result(self, None).await
    }

    /// [`result`](Self::result), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`result`](Self::result), and [`Error::WaitTimeout`](crate::Error::WaitTimeout).
    pub async fn result_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        wait::result(self, Some(timeout)).await
    }

    /// Follows the run: the current state (and progress) first, then every change, until
    /// the run reaches a terminal state.
    ///
    /// # Errors
    /// When the backend cannot subscribe.
    pub async fn subscribe(&self) -> Result<impl Stream<Item = Event> + Send + Unpin + 'static> {
        wait::subscribe(self).await
    }

    /// Cancels this key (see [`Docket::cancel`]).
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn cancel(&self) -> Result<bool> {
        self.inner.docket.cancel(&self.inner.parts.key).await
    }
}
