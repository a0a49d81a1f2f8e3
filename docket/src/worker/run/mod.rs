//! Running one delivery: its [`Execution`] is built from the message, admitted or not
//! ([`admit`]), the task itself awaited ([`task`]), and how it ended handed to the
//! finisher with what follows it.

mod admit;
mod task;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::Shared;
use super::finisher::{FinishSender, Handover};
use crate::backend::{Delivery, EntryId, Finish, Outcome, Reschedule, Wait};
use crate::behaviors::{Admission, Plan};
use crate::execution::{Execution, Run, RunControl, SlotUse};
use crate::model::{Disposition, TaskError, TaskErrorKind, TaskOptions, When};
use crate::observe::metrics;
use crate::task::registry::TaskRegistration;

pub(super) use admit::RunLimits;

/// What the main loop learns from a finished run.
pub(super) struct Ran {
    /// The run was the last its key may have under `run_at_most`: the key, whose
    /// further copies the main loop cancels.
    pub used_up: Option<String>,
}

/// What a run knows of its delivery besides its [`Execution`] (which took the message).
struct Delivered {
    /// The message's entry, for ack and renewal.
    id: EntryId,
    redelivered: bool,
    traceparent: Option<String>,
}

/// Runs one delivery to its end and hands that end to the finisher.
pub(super) async fn execute(
    shared: Arc<Shared>,
    delivery: Delivery,
    finisher: FinishSender,
    permit: OwnedSemaphorePermit,
    limits: Option<Arc<RunLimits>>,
) -> Ran {
    let (delivered, execution, registration, control) = prepare(&shared, delivery);
    let runner = match (registration, &shared.fallback) {
        (Some(registration), _) => task::Runner::Task(registration),
        (None, Some(fallback)) => task::Runner::Fallback(fallback),
        (None, None) => {
            let finish = hand_back(&shared, delivered, &execution);
            hand_over(&shared, &finisher, finish, execution, permit, None);
            return Ran { used_up: None };
        }
    };
    let options = *execution.options().unwrap_or(&TaskOptions::new());
    let attempt = execution.attempt();
    let (admission, last) = admit::admit(&shared, &execution, limits.as_deref()).await;
    let (outcome, next) = match admission {
        Admission::Run => {
            control.start_clock(options.timeout);
            let slot = match control.slot() {
                SlotUse::Held(slot) => Some(slot),
                _ => None,
            };
            let outcome = task::run(
                &shared,
                &delivered,
                runner,
                execution.clone(),
                &control,
                slot,
            )
            .await;
            let error = match &outcome {
                Outcome::Failed { error } => Some(error),
                _ => None,
            };
            let plan = match &outcome {
                Outcome::Completed { .. } | Outcome::Failed { .. } => {
                    let behaviors = shared.behaviors(execution.function());
                    behaviors.plan(&execution, error).await
                }
                Outcome::Cancelled | Outcome::Deferred | Outcome::Refused { .. } => Plan::default(),
            };
            let next = plan.into_reschedule(attempt, delivered.traceparent.clone());
            log_next(&shared, &execution, next.as_ref());
            (outcome, next)
        }
        Admission::Defer(delay) => {
            if control.slot() == SlotUse::None {
                let (key, function) = (execution.key(), execution.function());
                tracing::info!(key = %key, task = %function, delay = ?delay, "run deferred");
            }
            let wait = match control.slot() {
                SlotUse::Awaited(slot) => Some(Wait::Slot(slot)),
                _ => None,
            };
            let next = Reschedule {
                due: When::After(delay),
                attempt,
                args: None,
                traceparent: delivered.traceparent.clone(),
                wait,
            };
            (Outcome::Deferred, Some(next))
        }
        Admission::Cancel(reason) => {
            let error = TaskError::new(TaskErrorKind::Refused, reason);
            (Outcome::Refused { error }, None)
        }
    };
    let release = match control.slot() {
        SlotUse::Held(slot) => Some(slot),
        SlotUse::Awaited(_) | SlotUse::None => None,
    };
    let finish = Finish {
        delivery: delivered.id,
        key: execution.key().to_owned(),
        generation: execution.generation(),
        outcome,
        next,
        release,
    };
    if !last {
        hand_over(&shared, &finisher, finish, execution, permit, None);
        return Ran { used_up: None };
    }
    // The key's further copies are cancelled once this run's end is written (that end
    // may schedule its next run).
    let key = execution.key().to_owned();
    let (written, recorded) = oneshot::channel();
    hand_over(&shared, &finisher, finish, execution, permit, Some(written));
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
    Option<&'static TaskRegistration>,
    Arc<RunControl>,
) {
    let Delivery {
        id,
        message,
        redelivered,
    } = delivery;
    let registration = shared.tasks.get(&message.function);
    let control = Arc::new(RunControl::new(shared.context.clone()));
    let delivered = Delivered {
        id,
        redelivered,
        traceparent: message.traceparent.clone(),
    };
    let run = Run {
        worker: shared.info.clone(),
        options: registration.map_or_else(TaskOptions::new, |r| *r.options()),
        redelivered,
        control: control.clone(),
    };
    let execution = Execution::new(
        shared.docket.core().clone(),
        message,
        Disposition::Scheduled,
        Some(run),
    );
    (delivered, execution, registration, control)
}

/// A call of a task this worker does not serve, handed back to wait for a worker that
/// does: not run, not an attempt, parked until a serving worker's heartbeat queues it.
fn hand_back(shared: &Shared, delivered: Delivered, execution: &Execution) -> Finish {
    let task = execution.function();
    metrics::count(
        "docket_tasks_handed_back",
        shared.task_labels(task).into_owned(),
        1,
    );
    let first = shared
        .unserved_seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(task.to_owned());
    if first {
        tracing::warn!(
            docket = %shared.docket.name(), worker = %shared.info.name(), task,
            serves = ?shared.tasks.names(),
            "this worker does not serve `{task}`: its calls wait for a worker that does \
             (is the crate that declares it linked into this binary? does a --tasks \
             filter leave it out?)"
        );
    } else {
        tracing::debug!(key = %execution.key(), task, "handed back a call of a task this worker does not serve");
    }
    Finish {
        delivery: delivered.id,
        key: execution.key().to_owned(),
        generation: execution.generation(),
        outcome: Outcome::Deferred,
        next: Some(Reschedule {
            due: When::Now,
            attempt: execution.attempt(),
            args: None,
            traceparent: delivered.traceparent,
            wait: Some(Wait::Server),
        }),
        release: None,
    }
}

/// Hands how the delivery ended (and what follows it) to the finisher, which frees the
/// run's permit once the end is in the batch being written, records it, and tells
/// `written`.
fn hand_over(
    shared: &Shared,
    finisher: &FinishSender,
    finish: Finish,
    execution: Execution,
    permit: OwnedSemaphorePermit,
    written: Option<oneshot::Sender<()>>,
) {
    finisher.finish(
        shared,
        Handover {
            finish,
            execution,
            permit,
            written,
        },
    );
}

fn log_next(shared: &Shared, execution: &Execution, next: Option<&Reschedule>) {
    let Some(next) = next else { return };
    let (what, counter) = if next.attempt > execution.attempt() {
        shared.tally.retried();
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
        docket = %shared.docket.name(), worker = %shared.info.name(),
        task = %execution.function(), key = %execution.key(), next_attempt = next.attempt,
        due = ?next.due, "{what}"
    );
}
