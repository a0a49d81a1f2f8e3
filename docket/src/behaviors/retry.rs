//! The retry behaviour (`retry = ...` and [`Retry::after`](crate::Retry::after)).

use super::control::Chosen;
use super::{Behavior, BoxFuture, Plan};
use crate::error::TaskError;
use crate::execution::Execution;

/// The error a task returns to force a retry: made by
/// [`Retry::after`](crate::Retry::after) or [`Retry::at`](crate::Retry::at), which also
/// tell the worker when.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry requested by the task")]
pub struct ForcedRetry;

/// Retries failures while attempts remain, with the policy's delay; honours retries the
/// task forced, whatever it returned.
pub(crate) struct RetryBehavior;

fn plan_forced(execution: &Execution, plan: &mut Plan) -> bool {
    match execution.control().and_then(|c| c.forced_retry()) {
        Some(Chosen::After(delay)) => plan.retry_after(delay),
        Some(Chosen::At(when)) => plan.retry_at(when),
        None => return false,
    }
    true
}

impl Behavior for RetryBehavior {
    fn on_failure<'a>(
        &'a self,
        execution: &'a Execution,
        error: &'a TaskError,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if plan_forced(execution, plan) {
                return;
            }
            // The same message would fail the same way.
            if error.is_unknown_task() || error.is_bad_arguments() {
                return;
            }
            let Some(options) = execution.options() else {
                return;
            };
            let attempt = execution.attempt();
            if options
                .retry
                .attempts()
                .is_none_or(|attempts| attempt < attempts)
            {
                plan.retry_after(options.retry.delay_after(attempt));
            }
        })
    }

    fn on_completion<'a>(
        &'a self,
        execution: &'a Execution,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            plan_forced(execution, plan);
        })
    }
}
