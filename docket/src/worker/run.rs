//! Running one delivery: build its [`Execution`], resolve and await the task, record
//! how it ended.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::finisher::{Ending, FinishSender};
use super::{InFlight, Shared};
use futures::FutureExt;
use futures::future::{AbortHandle, Abortable, Aborted};

use super::gates::{self, Gate};
use crate::backend::{Delivery, Finish, Message, NextDue, Outcome, Reschedule, Slot};
use crate::behaviors::{Admission, Plan, RunControl};
use crate::error::{TaskError, TaskErrorKind};
use crate::execution::{Disposition, Execution, ExecutionParts, RunInfo};
use tracing::Instrument;

use crate::observe::metrics::Change;
use crate::observe::{metrics, trace};
use crate::task::TaskOptions;

/// What the main loop learns from a finished run.
pub(super) struct Ran {
    /// The run was the last its key may have under `run_at_most`: the key, whose
    /// further copies the main loop cancels.
    pub used_up: Option<String>,
}

/// What a run knows of its delivery besides its [`Execution`] (which took the message's
/// key, function and arguments).
struct Delivered {
    /// The message's id, for ack and renewal.
    id: String,
    redelivered: bool,
    traceparent: Option<String>,
}

/// A run's place in the worker's in-flight table. Dropping it (the run ended, or was
/// abandoned by a drain timeout) aborts the task and removes the entry, so nothing is
/// renewed for a run that is gone.
struct InFlightGuard<'a> {
    shared: &'a Shared,
    id: &'a str,
    abort: AbortHandle,
}

impl<'a> InFlightGuard<'a> {
    /// Registers the run; also says whether a cancellation of it arrived before it
    /// was registered (the listener keeps those a while).
    fn register(
        shared: &'a Shared,
        id: &'a str,
        execution: &Execution,
        abort: AbortHandle,
        slot: Option<Slot>,
    ) -> (Self, bool) {
        let mut in_flight = shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        in_flight.insert(
            id.to_owned(),
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
            .remove(self.id);
    }
}

/// `run_at_most`: how many runs each limited key may still start.
pub(super) struct RunLimits {
    left: std::sync::Mutex<HashMap<String, usize>>,
}

impl RunLimits {
    pub(super) fn new(limits: HashMap<String, usize>) -> Self {
        Self {
            left: std::sync::Mutex::new(limits),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one run of `key`: `None` when the key has used all of its runs, else
    /// whether this is its last one.
    fn take(&self, key: &str) -> Option<bool> {
        match self.lock().get_mut(key) {
            Some(0) => None,
            Some(left) => {
                *left -= 1;
                Some(*left == 0)
            }
            None => Some(false),
        }
    }
}

pub(super) async fn execute(
    shared: Arc<Shared>,
    delivery: Delivery,
    finisher: FinishSender,
    permit: OwnedSemaphorePermit,
    limits: Option<Arc<RunLimits>>,
) -> Ran {
    let (delivered, execution, registration, control) = prepare(&shared, delivery);
    let options = *execution.options().unwrap_or(&TaskOptions::new());
    let attempt = execution.attempt();
    let (mut admission, held) = match admission(&shared, &execution, &options, &delivered).await {
        Ok(decided) => decided,
        Err(waiting) => {
            finish(
                &shared, &finisher, delivered, execution, waiting, permit, None,
            );
            return Ran { used_up: None };
        }
    };
    // `run_at_most`: the limit is taken when a run is about to start, so a copy that
    // comes due before the key's last run was accounted for cannot run once too often.
    let mut last_allowed = false;
    if admission == Verdict::Run
        && let Some(limits) = &limits
    {
        if let Some(last) = limits.take(execution.key()) {
            last_allowed = last;
        } else {
            let key = execution.key();
            admission = Verdict::Refuse(Refusal::Dropped(format!(
                "`{key}` reached its run_at_most limit"
            )));
        }
    }
    let (outcome, next) = match admission {
        Verdict::Run => {
            control.start_clock(options.timeout);
            let outcome = run(
                &shared,
                &delivered,
                registration,
                execution.clone(),
                &control,
                held.clone(),
            )
            .await;
            let plan = plan_after(&shared, &execution, &outcome).await;
            let next = plan.into_reschedule(attempt, delivered.traceparent.clone());
            log_next(&shared, &execution, next.as_ref());
            (outcome, next)
        }
        Verdict::Defer(delay) => {
            let (key, function) = (execution.key(), execution.function());
            tracing::info!(key = %key, task = %function, delay = ?delay, "run deferred");
            let next = Reschedule {
                due: NextDue::After(delay),
                attempt,
                args: None,
                traceparent: delivered.traceparent.clone(),
            };
            (Outcome::Deferred, Some(next))
        }
        Verdict::Refuse(refusal) => (refused(&shared, &execution, refusal), None),
    };
    let release = held.is_some();
    let ended = Ended {
        outcome,
        next,
        slot: held,
        release,
    };
    if !last_allowed {
        finish(
            &shared, &finisher, delivered, execution, ended, permit, None,
        );
        return Ran { used_up: None };
    }
    // The key's further copies are cancelled once this run's end is written (that end
    // may schedule its next run).
    let key = execution.key().to_owned();
    let (written, recorded) = oneshot::channel();
    finish(
        &shared,
        &finisher,
        delivered,
        execution,
        ended,
        permit,
        Some(written),
    );
    let _ = recorded.await;
    Ran { used_up: Some(key) }
}

/// Takes a delivery apart: its message becomes the run's [`Execution`].
fn prepare(
    shared: &Shared,
    delivery: Delivery,
) -> (
    Delivered,
    Execution,
    Option<&'static crate::task::TaskRegistration>,
    Arc<RunControl>,
) {
    let Delivery {
        id,
        message,
        redelivered,
    } = delivery;
    let Message {
        key,
        function,
        args,
        when,
        attempt,
        generation,
        traceparent,
    } = message;
    let registration = shared.tasks.get(&function);
    let control = Arc::new(RunControl::default());
    let execution = Execution::new(
        shared.docket.clone(),
        ExecutionParts {
            key,
            function,
            args,
            when,
            attempt,
            generation,
            disposition: Disposition::Scheduled,
            run: Some(RunInfo {
                worker: shared.info.clone(),
                options: registration.map_or_else(TaskOptions::new, |r| *r.options()),
                redelivered,
                control: control.clone(),
                values: shared.values.clone(),
            }),
        },
    );
    let delivered = Delivered {
        id,
        redelivered,
        traceparent,
    };
    (delivered, execution, registration, control)
}

/// Whether a delivery runs now, later, or not at all.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Run,
    /// Put back, due again after this long.
    Defer(Duration),
    Refuse(Refusal),
}

impl From<Admission> for Verdict {
    fn from(admission: Admission) -> Self {
        match admission {
            Admission::Run => Self::Run,
            Admission::Defer(delay) => Self::Defer(delay),
            Admission::Cancel(reason) => Self::Refuse(Refusal::Dropped(reason)),
        }
    }
}

/// Why a delivery is not run: the reason its record keeps, and which counter counts it.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// A strike in effect blocks it (`docket_tasks_stricken`, `where="worker"`).
    Stricken(String),
    /// A behaviour cancelled it, or a limit dropped it (`docket_tasks_dropped`).
    Dropped(String),
}

/// A run refused: logged and counted.
fn refused(shared: &Shared, execution: &Execution, refusal: Refusal) -> Outcome {
    let (key, function) = (execution.key(), execution.function());
    let mut labels = shared.task_labels(function).into_owned();
    let (counter, reason) = match refusal {
        Refusal::Stricken(reason) => {
            labels.push(("where", "worker".to_owned()));
            ("docket_tasks_stricken", reason)
        }
        Refusal::Dropped(reason) => ("docket_tasks_dropped", reason),
    };
    metrics::count(counter, labels, 1);
    tracing::info!(docket.key = %key, docket.task = %function, %reason, "run dropped");
    let error = TaskError::new(TaskErrorKind::Refused, reason);
    Outcome::Refused { error }
}

/// How a delivery ended, for [`finish`].
struct Ended {
    outcome: Outcome,
    next: Option<Reschedule>,
    slot: Option<Slot>,
    release: bool,
}

/// Hands how the delivery ended (and what follows it) to the finisher, which frees the
/// run's permit once the end is in the batch being written, records it, and tells
/// `written`.
fn finish(
    shared: &Shared,
    finisher: &FinishSender,
    delivered: Delivered,
    execution: Execution,
    ended: Ended,
    permit: OwnedSemaphorePermit,
    written: Option<oneshot::Sender<()>>,
) {
    let finish = Finish {
        delivery_id: delivered.id,
        key: execution.key().to_owned(),
        generation: execution.generation(),
        outcome: ended.outcome,
        next: ended.next,
        slot: ended.slot,
        release: ended.release,
    };
    let ending = Ending {
        finish,
        execution,
        permit,
        written,
    };
    finisher.finish(shared, ending);
}

/// The behaviours' admission, then the task's own controls. `Err` when the call must
/// wait for a concurrency slot: how its delivery ends.
async fn admission(
    shared: &Shared,
    execution: &Execution,
    options: &TaskOptions,
    delivered: &Delivered,
) -> Result<(Verdict, Option<Slot>), Ended> {
    // A strike in effect blocks the run (the record ends CANCELLED) before any
    // behaviour is asked; the same check `add` makes.
    let strikes = execution.docket().strike_list();
    if let Some(strike) = strikes.blocking(execution.function(), execution.args()) {
        let reason = format!("stricken by `{strike}`");
        return Ok((Verdict::Refuse(Refusal::Stricken(reason)), None));
    }
    let admission = admit(shared, execution).await;
    if admission != Admission::Run {
        return Ok((admission.into(), None));
    }
    let parked = || {
        metrics::count(
            "docket_tasks_parked",
            shared.task_labels(execution.function()).into_owned(),
            1,
        );
    };
    match gates::check(shared, execution, options).await {
        Gate::Run(slot) => Ok((Verdict::Run, slot)),
        Gate::Defer(delay) => {
            parked();
            Ok((Verdict::Defer(delay), None))
        }
        Gate::Drop(reason) => Ok((Verdict::Refuse(Refusal::Dropped(reason)), None)),
        Gate::Wait(slot) => {
            parked();
            tracing::info!(
                docket.key = %execution.key(), docket.task = %execution.function(),
                scope = %slot.scope, max = slot.max,
                "concurrency limit reached: waiting for a slot"
            );
            let next = Reschedule {
                due: NextDue::Wait,
                attempt: execution.attempt(),
                args: None,
                traceparent: delivered.traceparent.clone(),
            };
            Err(Ended {
                outcome: Outcome::Deferred,
                next: Some(next),
                slot: Some(slot),
                release: false,
            })
        }
    }
}

/// Asks every behaviour whether the run may start; the first that does not admit it
/// decides.
async fn admit(shared: &Shared, execution: &Execution) -> Admission {
    for behavior in &shared.behaviors {
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

/// What follows the run, as the behaviours plan it in turn.
async fn plan_after(shared: &Shared, execution: &Execution, outcome: &Outcome) -> Plan {
    let mut plan = Plan::default();
    for behavior in &shared.behaviors {
        let hook = match outcome {
            Outcome::Failed { error } => behavior.on_failure(execution, error, &mut plan),
            Outcome::Completed { .. } => behavior.on_completion(execution, &mut plan),
            Outcome::Cancelled | Outcome::Deferred | Outcome::Refused { .. } => break,
        };
        if AssertUnwindSafe(hook).catch_unwind().await.is_err() {
            tracing::error!(key = %execution.key(), "a behaviour panicked planning what follows a run; ignored");
        }
    }
    plan
}

/// Runs the task itself, within its (extendable) timeout.
async fn run(
    shared: &Shared,
    delivered: &Delivered,
    registration: Option<&'static crate::task::TaskRegistration>,
    execution: Execution,
    control: &RunControl,
    slot: Option<Slot>,
) -> Outcome {
    let punctuality = SystemTime::now()
        .duration_since(execution.when())
        .unwrap_or_default();
    tracing::info!(
        docket.name = %shared.docket.name(),
        docket.worker = %shared.info.name,
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
        docket.worker = %shared.info.name,
        docket.task = %execution.function(),
        docket.key = %execution.key(),
        docket.attempt = execution.attempt(),
    );
    trace::continue_trace(&span, delivered.traceparent.as_deref());
    let future: crate::task::RunFuture = match (registration, &shared.fallback) {
        (Some(registration), _) => (registration.runner())(execution.clone()),
        (None, Some(fallback)) => fallback.call(execution.clone()),
        (None, None) => {
            let function = execution.function().to_owned();
            Box::pin(async move {
                tracing::warn!(task = %function, "no task is registered under this name");
                Err(TaskError::new(
                    TaskErrorKind::UnknownTask,
                    format!("no task named `{function}` is registered in this worker"),
                ))
            })
        }
    };
    // Polled here, in the run's own task: a cancellation aborts it, a panic is caught,
    // and a timeout drops it. (A task of its own cost a spawn and a wake per run.)
    let (abort, registration_abort) = AbortHandle::new_pair();
    let task = Abortable::new(
        AssertUnwindSafe(future.instrument(span.clone())).catch_unwind(),
        registration_abort,
    );
    let (guard, cancelled_before) =
        InFlightGuard::register(shared, &delivered.id, &execution, abort.clone(), slot);
    // A cancel published between the claim and the registration above was kept by the
    // listener; while the listener is not subscribed, the record is the only witness.
    let listening = shared.listening.load(std::sync::atomic::Ordering::Acquire);
    if cancelled_before || (!listening && cancelled_meanwhile(shared, &execution).await) {
        abort.abort();
    }
    let outcome = outcome_of(task, control, timeout).await;
    drop(guard);
    let duration = started.elapsed();
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
        Outcome::Completed { .. } => Some("docket_tasks_succeeded"),
        Outcome::Failed { .. } => Some("docket_tasks_failed"),
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

fn log_next(shared: &Shared, execution: &Execution, next: Option<&Reschedule>) {
    let Some(next) = next else { return };
    let (what, counter) = if next.attempt > execution.attempt() {
        ("task will be retried", "docket_tasks_retried")
    } else {
        ("task will run again", "docket_tasks_perpetuated")
    };
    metrics::count(
        counter,
        shared.task_labels(execution.function()).into_owned(),
        1,
    );
    tracing::info!(
        docket = %shared.docket.name(), worker = %shared.info.name,
        task = %execution.function(), key = %execution.key(), next_attempt = next.attempt,
        due = ?next.due, "{what}"
    );
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
        Ok(Ok(Ok(result))) => Outcome::Completed { result },
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
            record.generation != execution.generation()
                || record.state == crate::execution::ExecutionState::Cancelled
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
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name,
            docket.task = %function, docket.key = %key,
            docket.attempt = attempt, duration_ms, outcome = "completed",
            "task finished"
        ),
        Outcome::Failed { error } => tracing::warn!(
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name,
            docket.task = %function, docket.key = %key,
            docket.attempt = attempt, duration_ms, outcome = "failed",
            error = %error, "task failed"
        ),
        Outcome::Cancelled | Outcome::Deferred | Outcome::Refused { .. } => tracing::info!(
            docket.name = %shared.docket.name(), docket.worker = %shared.info.name,
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
