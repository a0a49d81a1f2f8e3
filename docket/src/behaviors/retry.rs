//! The retry behaviour (`retry = ...` and [`Retry::after`](crate::Retry::after)).

use super::{Behavior, Plan};
use crate::execution::Execution;
use crate::model::TaskError;

/// Retries failures while attempts remain, with the policy's delay; honours retries the
/// task forced, whatever it returned.
pub(crate) struct RetryBehavior;

fn plan_forced(execution: &Execution, plan: &mut Plan) -> bool {
    match execution.control().and_then(|c| c.forced_retry()) {
        Some(when) => {
            plan.retry(when);
            true
        }
        None => false,
    }
}

impl Behavior for RetryBehavior {
    async fn on_failure(&self, execution: &Execution, error: &TaskError, plan: &mut Plan) {
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
    }

    async fn on_completion(&self, execution: &Execution, plan: &mut Plan) {
        plan_forced(execution, plan);
    }
}
