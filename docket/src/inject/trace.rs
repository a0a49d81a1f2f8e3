//! The run as `tracing` sees it: its span ([`tracing::Span`] is injected) and a
//! [`TaskLogger`] whose events carry the run's fields.

use std::convert::Infallible;
use std::fmt::Display;

use tracing::{Level, Span};

use super::FromExecution;
use crate::execution::Execution;

/// The span the worker opens for a run, kept in the run's control block for the
/// parameters that inject it.
#[derive(Clone)]
pub(crate) struct RunSpan(pub(crate) Span);

/// The run's span: the one its worker opened, or outside a worker the span current
/// where it is asked for.
fn run_span(execution: &Execution) -> Span {
    execution
        .control()
        .and_then(|control| control.value::<RunSpan>())
        .map_or_else(Span::current, |RunSpan(span)| span)
}

/// A task's `tracing::Span` parameter is the span its worker opened for the run:
/// `docket.task.{task}`, with `docket.name`, `docket.worker`, `docket.task`,
/// `docket.key` and `docket.attempt`. Spans and events the task creates while it runs
/// are already inside it; the injected handle reaches it from elsewhere too (a spawned
/// task, a callback), and with `tracing-opentelemetry` it takes attributes of the
/// task's own.
///
/// Outside a worker (an [`Execution`] returned by [`Docket::add`](crate::Docket::add)
/// and handed to `from_execution` directly, say), there is no run span: the value is
/// [`Span::current`] where it is resolved, which is disabled when no span is entered.
///
/// ```
/// #[docket::task]
/// async fn reindex(shard: u32, span: tracing::Span) {
///     let child = tracing::info_span!(parent: &span, "reindex.shard", shard);
///     child.in_scope(|| tracing::info!("shard reindexed"));
/// }
/// ```
impl FromExecution for Span {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(run_span(execution))
    }
}

/// The fields that say which run a [`TaskLogger`]'s events belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskFields {
    /// The docket's name (`docket.name`).
    pub docket: String,
    /// The worker running the task (`docket.worker`), or `None` outside a worker.
    pub worker: Option<String>,
    /// The task's wire name (`docket.task`).
    pub task: String,
    /// The task key (`docket.key`).
    pub key: String,
    /// The attempt: 1 for the first run (`docket.attempt`).
    pub attempt: u32,
}

/// Writes a task's own log lines, each a `tracing` event with target `docket::task`,
/// inside the run's span, carrying the run's fields: `docket.name`, `docket.worker`,
/// `docket.task`, `docket.key` and `docket.attempt` (as the worker's own "task started"
/// and "task finished" lines do).
///
/// Outside a worker, events go inside the span current where the logger was resolved
/// (as an injected [`tracing::Span`] is), and carry no `docket.worker`.
///
/// ```no_run
/// use docket::TaskLogger;
///
/// #[docket::task(retry = Fixed(3, 10s))]
/// async fn charge(order_id: u64, log: TaskLogger) -> Result<(), String> {
///     log.info(format_args!("charging order {order_id}"));
///     if log.fields().attempt > 1 {
///         log.warn("charging again after a failed attempt");
///     }
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> docket::Result<()> {
/// tracing_subscriber::fmt().init();
/// let docket = docket::Docket::connect("shop", "memory://shop").await?;
/// docket.add(Charge::new(42)).await?;
/// docket::Worker::builder(docket).build()?.run_until_finished().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TaskLogger {
    fields: TaskFields,
    span: Span,
}

impl TaskLogger {
    /// The run's fields, as every event carries them.
    pub fn fields(&self) -> &TaskFields {
        &self.fields
    }

    /// Logs `message` at debug level.
    pub fn debug(&self, message: impl Display) {
        self.event(Level::DEBUG, &message);
    }

    /// Logs `message` at info level.
    pub fn info(&self, message: impl Display) {
        self.event(Level::INFO, &message);
    }

    /// Logs `message` at warn level.
    pub fn warn(&self, message: impl Display) {
        self.event(Level::WARN, &message);
    }

    /// Logs `message` at error level.
    pub fn error(&self, message: impl Display) {
        self.event(Level::ERROR, &message);
    }

    fn event(&self, level: Level, message: &dyn Display) {
        let fields = &self.fields;
        // `tracing::event!` takes its level as a constant: one call site per level.
        macro_rules! event {
            ($level:expr) => {
                tracing::event!(
                    target: "docket::task",
                    $level,
                    docket.name = %fields.docket,
                    docket.worker = fields.worker.as_deref(),
                    docket.task = %fields.task,
                    docket.key = %fields.key,
                    docket.attempt = fields.attempt,
                    "{message}"
                )
            };
        }
        self.span.in_scope(|| match level {
            Level::ERROR => event!(Level::ERROR),
            Level::WARN => event!(Level::WARN),
            Level::INFO => event!(Level::INFO),
            Level::DEBUG => event!(Level::DEBUG),
            _ => event!(Level::TRACE),
        });
    }
}

impl FromExecution for TaskLogger {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        let fields = TaskFields {
            docket: execution.core().name.clone(),
            worker: execution.worker().map(|worker| worker.name().to_owned()),
            task: execution.function().to_owned(),
            key: execution.key().to_owned(),
            attempt: execution.attempt(),
        };
        Ok(Self {
            fields,
            span: run_span(execution),
        })
    }
}

#[cfg(test)]
mod tests {
    use tracing::Instrument;

    use super::*;

    #[docket::task]
    async fn outside_a_worker() {}

    #[tokio::test(flavor = "current_thread")]
    async fn outside_a_worker_the_span_is_the_current_one_and_no_worker_is_named() {
        let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry());
        let docket = crate::Docket::connect("trace-outside", "memory://trace-outside")
            .await
            .unwrap();
        let execution = docket
            .add(OutsideAWorker::new())
            .key("k")
            .await
            .unwrap()
            .untyped();
        let caller = tracing::info_span!("caller");
        let (span, logger) = async {
            let span = Span::from_execution(&execution).await.unwrap();
            (span, TaskLogger::from_execution(&execution).await.unwrap())
        }
        .instrument(caller.clone())
        .await;
        assert!(!caller.is_disabled());
        assert_eq!(span, caller);
        assert_eq!(logger.span, caller);
        assert_eq!(
            logger.fields(),
            &TaskFields {
                docket: "trace-outside".to_owned(),
                worker: None,
                task: "outside_a_worker".to_owned(),
                key: "k".to_owned(),
                attempt: 1,
            }
        );
    }
}
