//! Running one delivery: its [`Execution`] is built from the message, admitted or not
//! ([`admit`]), the task itself awaited ([`task`]), and how it ended handed to the
//! finisher with what follows it.

mod admit;
mod task;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::Shared;
use super::finisher::{FinishSender, Handover};
use crate::backend::{Delivery, EntryId, Finish, Outcome, Reschedule, SlotChange};
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
                registration,
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
            let next = Reschedule {
                due: When::After(delay),
                attempt,
                args: None,
                traceparent: delivered.traceparent.clone(),
            };
            (Outcome::Deferred, Some(next))
        }
        Admission::Cancel(reason) => {
            let error = TaskError::new(TaskErrorKind::Refused, reason);
            (Outcome::Refused { error }, None)
        }
    };
    let slot = match control.slot() {
        SlotUse::Held(slot) => Some(SlotChange::Release(slot)),
        SlotUse::Awaited(slot) => Some(SlotChange::Await(slot)),
        SlotUse::None => None,
    };
    let finish = Finish {
        delivery: delivered.id,
        key: execution.key().to_owned(),
        generation: execution.generation(),
        outcome,
        next,
        slot,
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
