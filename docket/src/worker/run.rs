//! Running one delivery: build its [`Execution`], resolve and await the task, record
//! how it ended.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OwnedSemaphorePermit;

use super::finisher::FinishSender;
use super::{InFlight, Shared};
use crate::backend::{Delivery, Finish, FinishOutcome, Outcome};
use crate::error::{TaskError, TaskErrorKind};
use crate::execution::{Disposition, Execution, ExecutionParts, RunInfo};
use crate::task::TaskOptions;

/// What the main loop learns from a finished run.
pub(super) struct Ran {
    pub key: String,
}

/// A run's place in the worker's in-flight table. Dropping it (the run ended, or was
/// abandoned by a drain timeout) aborts the task and removes the entry, so nothing is
/// renewed for a run that is gone.
struct InFlightGuard<'a> {
    shared: &'a Shared,
    id: String,
    abort: tokio::task::AbortHandle,
}

impl<'a> InFlightGuard<'a> {
    fn register(shared: &'a Shared, delivery: &Delivery, abort: tokio::task::AbortHandle) -> Self {
        shared
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                delivery.id.clone(),
                InFlight {
                    key: delivery.message.key.clone(),
                    abort: abort.clone(),
                },
            );
        Self {
            shared,
            id: delivery.id.clone(),
            abort,
        }
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

pub(super) async fn execute(
    shared: Arc<Shared>,
    delivery: Delivery,
    finisher: FinishSender,
    permit: OwnedSemaphorePermit,
) -> Ran {
    let message = &delivery.message;
    let key = message.key.clone();
    let registration = shared.tasks.get(&message.function);
    let options = registration.map_or_else(TaskOptions::new, |r| *r.options());
    let execution = Execution::new(
        shared.docket.clone(),
        ExecutionParts {
            key: key.clone(),
            function: message.function.clone(),
            args: message.args.clone(),
            when: message.when,
            attempt: message.attempt,
            generation: message.generation,
            disposition: Disposition::Scheduled,
            run: Some(RunInfo {
                worker: shared.info.clone(),
                options,
                redelivered: delivery.redelivered,
            }),
        },
    );
    let punctuality = SystemTime::now()
        .duration_since(message.when)
        .unwrap_or_default();
    tracing::info!(
        docket = %shared.docket.name(),
        worker = %shared.info.name,
        task = %message.function,
        key = %key,
        attempt = message.attempt,
        redelivered = delivery.redelivered,
        punctuality_ms = punctuality.as_millis(),
        "task started"
    );
    let started = Instant::now();

    let future: crate::task::RunFuture = match (registration, &shared.fallback) {
        (Some(registration), _) => (registration.runner())(execution),
        (None, Some(fallback)) => fallback.call(execution),
        (None, None) => {
            let function = message.function.clone();
            Box::pin(async move {
                tracing::warn!(task = %function, "no task is registered under this name");
                Err(TaskError::new(
                    TaskErrorKind::UnknownTask,
                    format!("no task named `{function}` is registered in this worker"),
                ))
            })
        }
    };
    let handle = tokio::spawn(future);
    let guard = InFlightGuard::register(&shared, &delivery, handle.abort_handle());
    // A cancel published between the claim and the registration above reached no
    // one: look at the record once, now that the listener can find this run.
    if cancelled_meanwhile(&shared, message).await {
        handle.abort();
    }
    let outcome = outcome_of(handle, options.timeout).await;
    drop(guard);
    let duration = started.elapsed();
    log_end(&shared, &delivery, &outcome, duration);

    let recorded = finisher
        .finish(Finish {
            delivery_id: delivery.id.clone(),
            key: key.clone(),
            generation: message.generation,
            outcome,
        })
        .await;
    match recorded {
        Ok(FinishOutcome::Recorded) => {}
        Ok(FinishOutcome::Superseded) => {
            tracing::info!(key = %key, "the run was superseded while running; its end was not recorded");
        }
        Ok(FinishOutcome::Fenced) => {
            tracing::warn!(key = %key, "the run was taken over by another worker; its end was not recorded");
        }
        Err(error) => {
            tracing::warn!(key = %key, %error, "could not record the end of a run; it will be redelivered");
        }
    }
    drop(permit);
    Ran { key }
}

/// Awaits the task within its timeout and says how the run ended. A task past its
/// timeout is aborted at once, so its side effects stop with its budget.
async fn outcome_of(
    mut handle: tokio::task::JoinHandle<Result<Option<String>, TaskError>>,
    timeout: Option<Duration>,
) -> Outcome {
    let joined = if let Some(limit) = timeout {
        if let Ok(joined) = tokio::time::timeout(limit, &mut handle).await {
            joined
        } else {
            handle.abort();
            return Outcome::Failed {
                error: TaskError::new(
                    TaskErrorKind::TimedOut,
                    format!("the task ran longer than its timeout of {}", human(limit)),
                ),
            };
        }
    } else {
        handle.await
    };
    match joined {
        Ok(Ok(result)) => Outcome::Completed { result },
        Ok(Err(error)) => Outcome::Failed { error },
        Err(join) if join.is_cancelled() => Outcome::Cancelled,
        Err(join) => Outcome::Failed {
            error: TaskError::new(
                TaskErrorKind::Panicked,
                format!("the task panicked: {}", panic_message(join.into_panic())),
            ),
        },
    }
}

/// The record says the run was cancelled (or replaced) after this worker claimed it.
async fn cancelled_meanwhile(shared: &Shared, message: &crate::backend::Message) -> bool {
    match shared.docket.backend().record(&message.key).await {
        Ok(Some(record)) => {
            record.generation != message.generation
                || record.state == crate::execution::ExecutionState::Cancelled
        }
        // A live run always has a record (live records never expire); none means it
        // was ended, as a fire-and-forget cancel deletes it. A read error proves nothing.
        Ok(None) => true,
        Err(_) => false,
    }
}

fn log_end(shared: &Shared, delivery: &Delivery, outcome: &Outcome, duration: Duration) {
    let message = &delivery.message;
    let duration_ms = duration.as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Completed { .. } => tracing::info!(
            docket = %shared.docket.name(), worker = %shared.info.name, task = %message.function,
            key = %message.key, attempt = message.attempt, duration_ms, outcome = "completed",
            "task finished"
        ),
        Outcome::Failed { error } => tracing::warn!(
            docket = %shared.docket.name(), worker = %shared.info.name, task = %message.function,
            key = %message.key, attempt = message.attempt, duration_ms, outcome = "failed",
            error = %error, "task failed"
        ),
        Outcome::Cancelled => tracing::info!(
            docket = %shared.docket.name(), worker = %shared.info.name, task = %message.function,
            key = %message.key, attempt = message.attempt, duration_ms, outcome = "cancelled",
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
