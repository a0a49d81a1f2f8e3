//! Awaiting the task itself: its future polled in the run's own task, within its
//! (extendable) timeout, interruptible by a cancellation, a panic caught; its start and
//! end logged, traced and counted.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::{AbortHandle, Abortable, Aborted};
use tracing::Instrument;

use super::Delivered;
use crate::backend::{BoxFuture, EntryId, Outcome, Output, Slot};
use crate::execution::{Execution, RunControl};
use crate::inject::RunSpan;
use crate::model::{ExecutionState, TaskError, TaskErrorKind};
use crate::observe::metrics::Change;
use crate::observe::{metrics, trace};
use crate::results;
use crate::task::registry::{RunFuture, TaskRegistration};
use crate::worker::{Fallback, InFlight, Shared};

/// A run's place in the worker's in-flight table. Dropping it (the run ended, or was
/// abandoned by a drain timeout) aborts the task and removes the entry, so nothing is
/// renewed for a run that is gone.
struct InFlightGuard<'a> {
    shared: &'a Shared,
    id: EntryId,
    abort: AbortHandle,
}

impl<'a> InFlightGuard<'a> {
    /// Registers the run; also says whether a cancellation of it arrived before it
    /// was registered (the listener keeps those a while).
    fn register(
        shared: &'a Shared,
        id: EntryId,
        execution: &Execution,
        abort: AbortHandle,
        slot: Option<Slot>,
    ) -> (Self, bool) {
        let mut in_flight = shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        in_flight.insert(
            id,
            InFlight {
                key: execution.key().to_owned(),
                generation: execution.generation(),
                abort: abort.clone(),
                slot,
            },
        );
        // Looked at with `in_flight` still locked: the listener files a cancellation
        // it cannot match under the same lock, so one of the two sees the other.
        let cancelled = shared
            .unmatched_cancels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(execution.key(), execution.generation());
        drop(in_flight);
        let guard = Self { shared, id, abort };
        (guard, cancelled)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.abort.abort();
        self.shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// What runs a call: its task, or the worker's fallback for tasks it does not know.
#[derive(Clone, Copy)]
pub(super) enum Runner<'a> {
    Task(&'static TaskRegistration),
    Fallback(&'a Fallback),
}

/// Runs the task itself, within its (extendable) timeout.
pub(super) async fn run(
    shared: &Shared,
    delivered: &Delivered,
    runner: Runner<'_>,
    execution: Execution,
    control: &RunControl,
    slot: Option<Slot>,
) -> Outcome {
    let punctuality = SystemTime::now()
        .duration_since(execution.when())
        .unwrap_or_default();
    tracing::info!(
        docket.name = %shared.docket.name(),
        docket.worker = %shared.info.name(),
        docket.task = %execution.function(),
        docket.key = %execution.key(),
        docket.attempt = execution.attempt(),
        redelivered = delivered.redelivered,
        punctuality_ms = punctuality.as_millis(),
        "task started"
    );
    let labels = shared.task_labels(execution.function());
    let started_changes = [
        ("docket_tasks_started", Change::Count(1)),
        ("docket_task_punctuality", Change::Observe(punctuality)),
        ("docket_tasks_running", Change::Add(1.0)),
        ("docket_tasks_redelivered", Change::Count(1)),
    ];
    let redelivered = usize::from(delivered.redelivered);
    metrics::apply(&labels, &started_changes[..3 + redelivered]);
    let started = Instant::now();
    let timeout = execution.options().and_then(|o| o.timeout);
    let span = tracing::info_span!(
        "docket.task",
        otel.name = %format!("docket.task.{}", execution.function()),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        docket.name = %shared.docket.name(),
        docket.worker = %shared.info.name(),
        docket.task = %execution.function(),
        docket.key = %execution.key(),
        docket.attempt = execution.attempt(),
    );
    trace::continue_trace(&span, delivered.traceparent.as_deref());
    // Kept with the run's values, for the parameters that inject the span.
    control.insert(RunSpan(span.clone()));
    let future: RunFuture = match runner {
        Runner::Task(registration) => (registration.runner())(execution.clone()),
        Runner::Fallback(fallback) => fallback.call(execution.clone()),
    };
    // Polled here, in the run's own task: a cancellation aborts it, a panic is caught,
    // and a timeout drops it. (A task of its own cost a spawn and a wake per run.)
    let (abort, registration_abort) = AbortHandle::new_pair();
    let task = Abortable::new(
        AssertUnwindSafe(future.instrument(span.clone())).catch_unwind(),
        registration_abort,
    );
    let (guard, cancelled_before) =
        InFlightGuard::register(shared, delivered.id, &execution, abort.clone(), slot);
    // A cancel published between the claim and the registration above was kept by the
    // listener; while the listener is not subscribed, the record is the only witness.
    let listening = shared.listening.load(std::sync::atomic::Ordering::Acquire);
    if cancelled_before || (!listening && cancelled_meanwhile(shared, &execution).await) {
        abort.abort();
    }
    let outcome = outcome_of(task, control, timeout).await;
    let duration = started.elapsed();
    // Kept before the run leaves the in-flight table, so its message stays renewed
    // while a result store takes its time.
    let outcome = match outcome {
        Outcome::Completed {
            result: Some(Output::Value(value)),
        } => match keep_result(shared, &execution, value) {
            Kept::Now(outcome) => outcome,
            Kept::Putting(put) => put.await,
        },
        outcome => outcome,
    };
    drop(guard);
    if let Outcome::Failed { error } = &outcome {
        span.record("otel.status_code", "ERROR");
        span.record("otel.status_message", error.message());
        span.in_scope(|| {
            tracing::error!(exception.message = %error, exception.type = error.kind_name(), "exception");
        });
    } else {
        span.record("otel.status_code", "OK");
    }
    span.in_scope(|| log_end(shared, &execution, &outcome, duration));
    let ended = match &outcome {
        Outcome::Completed { .. } => {
            shared.tally.succeeded();
            Some("docket_tasks_succeeded")
        }
        Outcome::Failed { .. } => {
            shared.tally.failed();
            Some("docket_tasks_failed")
        }
        Outcome::Cancelled => Some("docket_tasks_cancelled"),
        Outcome::Deferred | Outcome::Refused { .. } => None,
    };
    let ended_changes = [
        ("docket_tasks_running", Change::Add(-1.0)),
        ("docket_task_duration", Change::Observe(duration)),
        (ended.unwrap_or_default(), Change::Count(1)),
        ("docket_tasks_completed", Change::Count(1)),
    ];
    let counted = if ended.is_some() { 4 } else { 2 };
    metrics::apply(&labels, &ended_changes[..counted]);
    outcome
}

/// How a run that returned a result ends: at once, or once its result store has it.
enum Kept<'a> {
    Now(Outcome),
    /// Boxed: only on this path does a run's future hold a store's state.
    Putting(BoxFuture<'a, Outcome>),
}

/// How a run that returned `value` ends, its result kept as the docket keeps results:
/// a result over the size limit fails the run. Without a result store, the result goes
/// with the run's end and nothing is awaited; with one, the result is put there first,
/// and a store that cannot keep it fails the run.
fn keep_result<'a>(shared: &'a Shared, execution: &'a Execution, value: String) -> Kept<'a> {
    let core = shared.docket.core();
    if let Err(error) = core.results.check_size(value.len()) {
        return Kept::Now(Outcome::Failed { error });
    }
    let Some(store) = &core.results.store else {
        return Kept::Now(Outcome::Completed {
            result: Some(Output::Value(value)),
        });
    };
    Kept::Putting(Box::pin(async move {
        let key = execution.key();
        // The TTL its producer chose travels in the record; this handle's for one
        // without (or when the record cannot be read now).
        let ttl = match core.backend.record(key).await {
            Ok(record) => record.and_then(|r| r.ttl).unwrap_or(core.execution_ttl),
            Err(error) => {
                tracing::debug!(%key, %error, "could not read the call's TTL; using this handle's");
                core.execution_ttl
            }
        };
        // Fire-and-forget: nothing is kept.
        if ttl.is_zero() {
            return Outcome::Completed { result: None };
        }
        let generation = execution.generation();
        match results::put(store.as_ref(), &core.name, key, generation, &value, ttl).await {
            Ok(output) => Outcome::Completed {
                result: Some(output),
            },
            Err(error) => Outcome::Failed { error },
        }
    }))
}

/// What awaiting a task gives: aborted (cancelled), or else panicked or returned.
type TaskEnd = Result<std::thread::Result<Result<Option<String>, TaskError>>, Aborted>;

/// Awaits the task within its deadline and says how the run ended. A task past its
/// deadline (which it may have extended) is dropped at once, so its side effects stop
/// with its budget.
async fn outcome_of(
    task: impl Future<Output = TaskEnd>,
    control: &RunControl,
    timeout: Option<Duration>,
) -> Outcome {
    let mut task = std::pin::pin!(task);
    let joined = loop {
        let Some(deadline) = control.deadline() else {
            break task.as_mut().await;
        };
        tokio::select! {
            joined = task.as_mut() => break joined,
            () = tokio::time::sleep_until(deadline) => {
                // Extended meanwhile: wait for the new deadline.
                if control.deadline().is_some_and(|d| d > tokio::time::Instant::now()) {
                    continue;
                }
                let budget = timeout.map_or_else(String::new, |t| format!(" of {}", human(t)));
                return Outcome::Failed {
                    error: TaskError::new(
                        TaskErrorKind::TimedOut,
                        format!("the task ran longer than its timeout{budget}"),
                    ),
                };
            }
        }
    };
    match joined {
        Ok(Ok(Ok(result))) => Outcome::Completed {
            result: result.map(Output::Value),
        },
        Ok(Ok(Err(error))) => Outcome::Failed { error },
        Err(Aborted) => Outcome::Cancelled,
        Ok(Err(panic)) => Outcome::Failed {
            error: TaskError::new(
                TaskErrorKind::Panicked,
                format!("the task panicked: {}", panic_message(panic)),
            ),
        },
    }
}

/// The record says the run was cancelled (or replaced) after this worker claimed it.
async fn cancelled_meanwhile(shared: &Shared, execution: &Execution) -> bool {
    match shared.docket.backend().record(execution.key()).await {
        Ok(Some(record)) => {
            record.message.generation != execution.generation()
                || record.state == ExecutionState::Cancelled
        }
        // A live run always has a record (live records never expire); none means it
        // was ended, as a fire-and-forget cancel deletes it. A read error proves nothing.
        Ok(None) => true,
        Err(_) => false,
    }
}

fn log_end(shared: &Shared, execution: &Execution, outcome: &Outcome, duration: Duration) {
    let (function, key, attempt) = (execution.function(), execution.key(), execution.attempt());
    let duration_ms = (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    match outcome {
        Outcome::Completed { .. } => tracing::info!(
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name(),
            docket.task = %function, docket.key = %key,
            docket.attempt = attempt, duration_ms, outcome = "completed",
            "task finished"
        ),
        Outcome::Failed { error } => tracing::warn!(
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name(),
            docket.task = %function, docket.key = %key,
            docket.attempt = attempt, duration_ms, outcome = "failed",
            error = %error, "task failed"
        ),
        Outcome::Cancelled | Outcome::Deferred | Outcome::Refused { .. } => tracing::info!(
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name(),
            docket.task = %function, docket.key = %key,
            docket.attempt = attempt, duration_ms, outcome = "cancelled",
            "task cancelled"
        ),
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map_or_else(
            || "a non-string panic payload".to_owned(),
            |s| (*s).to_owned(),
        ),
    }
}

fn human(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
