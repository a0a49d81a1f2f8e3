//! [`Execution`]: one call of a task, seen from the producer that added it or from inside
//! its run.

mod control;
mod wait;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use serde::de::DeserializeOwned;
use tracing::Instrument;

pub(crate) use control::{RunControl, SlotUse};

use crate::backend::Backend;
use crate::error::Result;
use crate::model::{
    Disposition, Event, ExecutionRecord, ExecutionState, Message, ProgressState, TaskOptions,
    WorkerInfo,
};
use crate::observe::metrics;
use crate::results::ResultSettings;

/// What the executions of one docket share with its [`Docket`](crate::Docket) handle: the
/// docket's name, its backend, how long records are kept, and where results go.
pub(crate) struct Core {
    pub name: String,
    pub backend: Arc<dyn Backend>,
    pub execution_ttl: Duration,
    pub results: ResultSettings,
}

impl Core {
    /// Cancels `key` (see [`Docket::cancel`](crate::Docket::cancel)).
    pub(crate) async fn cancel(&self, key: &str) -> Result<bool> {
        let span =
            tracing::info_span!("docket.cancel", docket.name = %self.name, docket.key = %key);
        let cancelled = self.backend.cancel(key).instrument(span).await?;
        if cancelled {
            metrics::count(
                "docket_tasks_cancelled",
                metrics::labels(&self.name, None, None),
                1,
            );
        }
        Ok(cancelled)
    }
}

/// What only a running execution knows: its worker, its task's options, how it was
/// delivered, and the control block it shares with the worker.
pub(crate) struct Run {
    pub worker: WorkerInfo,
    pub options: TaskOptions,
    pub redelivered: bool,
    pub control: Arc<RunControl>,
}

/// One call of a task: what [`Docket::add`](crate::Docket::add) returns, and what a
/// running task can inject.
///
/// `T` is what the task returns, so a handle from `add` knows its result's type:
/// [`result`](Self::result) needs no annotation. A handle found by key
/// ([`Docket::get_execution`](crate::Docket::get_execution)), a batch of calls of mixed
/// tasks, and the execution a task injects do not know it: their `T` is
/// [`serde_json::Value`], and [`typed`](Self::typed) names the type.
///
/// Cheap to clone. The producer side uses it to follow the run ([`state`](Self::state),
/// [`result`](Self::result), [`subscribe`](Self::subscribe)); inside a run it says which
/// call is running ([`attempt`](Self::attempt), [`redelivered`](Self::redelivered),
/// [`worker`](Self::worker)).
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
/// let sum: i64 = execution.result().await?;
/// assert_eq!(sum, 5);
///
/// // By key, the result's type is not known: it is JSON, or name it.
/// let found = docket.get_execution("sum").await?.expect("a record");
/// assert_eq!(found.result().await?, serde_json::json!(5));
/// assert_eq!(found.typed::<i64>().result().await?, 5);
/// # Ok(()) }
/// ```
pub struct Execution<T = serde_json::Value> {
    inner: Arc<Inner>,
    output: PhantomData<fn() -> T>,
}

struct Inner {
    core: Arc<Core>,
    message: Message,
    disposition: Disposition,
    run: Option<Run>,
}

impl<T> Clone for Execution<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            output: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Execution<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = &self.inner.message;
        f.debug_struct("Execution")
            .field("docket", &self.inner.core.name)
            .field("key", &message.key)
            .field("function", &message.function)
            .field("attempt", &message.attempt)
            .field("generation", &message.generation)
            .field("disposition", &self.inner.disposition)
            .finish_non_exhaustive()
    }
}

impl Execution {
    /// An execution of `message`, as its docket placed it (or found it).
    pub(crate) fn new(
        core: Arc<Core>,
        message: Message,
        disposition: Disposition,
        run: Option<Run>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                core,
                message,
                disposition,
                run,
            }),
            output: PhantomData,
        }
    }
}

impl<T> Execution<T> {
    /// The same execution, whose result reads as a `U`.
    pub fn typed<U>(self) -> Execution<U> {
        Execution {
            inner: self.inner,
            output: PhantomData,
        }
    }

    /// The same execution, whose result reads as JSON (to keep calls of different tasks
    /// together).
    pub fn untyped(self) -> Execution {
        self.typed()
    }

    /// The call: key, task, arguments, due time, attempt and generation.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// The task key.
    pub fn key(&self) -> &str {
        &self.inner.message.key
    }

    /// The task's wire name.
    pub fn function(&self) -> &str {
        &self.inner.message.function
    }

    /// The arguments, a JSON object keyed by parameter name.
    pub fn args(&self) -> &str {
        &self.inner.message.args
    }

    /// When the run is (or was) due.
    pub fn when(&self) -> SystemTime {
        self.inner.message.when
    }

    /// The attempt: 1 for the first run, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.inner.message.attempt
    }

    /// The key's generation this execution belongs to; every schedule increments it.
    pub fn generation(&self) -> u64 {
        self.inner.message.generation
    }

    /// What `add` / `replace` did with the call.
    pub fn disposition(&self) -> Disposition {
        self.inner.disposition
    }

    /// Inside a run: whether this delivery was taken over from a worker that stopped.
    pub fn redelivered(&self) -> bool {
        self.inner.run.as_ref().is_some_and(|run| run.redelivered)
    }

    /// Inside a run: the worker running it.
    pub fn worker(&self) -> Option<&WorkerInfo> {
        self.inner.run.as_ref().map(|run| &run.worker)
    }

    /// Inside a run: the options the task declared.
    pub fn options(&self) -> Option<&TaskOptions> {
        self.inner.run.as_ref().map(|run| &run.options)
    }

    /// Inside a run: the control block the run shares with its worker.
    pub(crate) fn control(&self) -> Option<&Arc<RunControl>> {
        self.inner.run.as_ref().map(|run| &run.control)
    }

    /// What this execution shares with its docket.
    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    /// The stored record of the key, or `None` when it has expired (or never existed).
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn record(&self) -> Result<Option<ExecutionRecord>> {
        self.inner.core.backend.record(self.key()).await
    }

    /// The key's current state.
    ///
    /// # Errors
    /// [`Error::NotFound`](crate::Error::NotFound) when no record exists (it expired
    /// after `execution_ttl`, or the docket runs fire-and-forget), or a backend error.
    pub async fn state(&self) -> Result<ExecutionState> {
        match self.record().await? {
            Some(record) => Ok(record.state),
            None => Err(crate::Error::NotFound(self.key().to_owned())),
        }
    }

    /// The current progress of the run, if it reported any.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn progress(&self) -> Result<Option<ProgressState>> {
        self.inner.core.backend.progress(self.key()).await
    }

    /// Follows the run: the current state (and progress) first, then every change, until
    /// the run reaches a terminal state.
    ///
    /// # Errors
    /// When the backend cannot subscribe.
    pub async fn subscribe(&self) -> Result<impl Stream<Item = Event> + Send + Unpin + 'static> {
        wait::subscribe(&self.inner.core, self.key()).await
    }

    /// Cancels this key (see [`Docket::cancel`](crate::Docket::cancel)).
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn cancel(&self) -> Result<bool> {
        self.inner.core.cancel(self.key()).await
    }
}

impl<T: DeserializeOwned> Execution<T> {
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
    pub async fn result(&self) -> Result<T> {
        wait::result(&self.inner.core, self.key(), None).await
    }

    /// [`result`](Self::result), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`result`](Self::result), and [`Error::WaitTimeout`](crate::Error::WaitTimeout).
    pub async fn result_timeout(&self, timeout: Duration) -> Result<T> {
        wait::result(&self.inner.core, self.key(), Some(timeout)).await
    }
}
