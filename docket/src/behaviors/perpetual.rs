//! Perpetual and cron tasks: after every run (success or final failure) the same key
//! runs again, `every` after this run started or at the next cron time — or when and
//! with what the run chose through [`Perpetual`](crate::Perpetual).

use std::time::SystemTime;

use super::{Behavior, Plan, cron};
use crate::execution::Execution;
use crate::model::{Schedule, TaskError};

/// Plans the next run of perpetual and cron tasks (and of any task whose run chose one
/// through [`Perpetual`](crate::Perpetual)), unless a retry is planned or the run ended
/// the chain.
pub(crate) struct PerpetualBehavior;

impl PerpetualBehavior {
    async fn plan(execution: &Execution, plan: &mut Plan) {
        if plan.is_retry() {
            return;
        }
        let (cancelled, chosen, args) = match execution.control() {
            Some(control) => {
                let mut choice = control.perpetual();
                (choice.cancelled, choice.next, choice.args.take())
            }
            None => (false, None, None),
        };
        if cancelled {
            plan.end();
            return;
        }
        match (chosen, execution.options().and_then(|o| o.schedule)) {
            (Some(when), _) => plan.run_again(when),
            (None, Some(Schedule::Every(every))) => plan.run_again_every(every),
            (
                None,
                Some(Schedule::Cron {
                    expression,
                    time_zone,
                }),
            ) => {
                let now = execution
                    .core()
                    .backend
                    .now()
                    .await
                    .unwrap_or_else(|_| SystemTime::now());
                match cron::next_after(expression, time_zone, now) {
                    Ok(when) => plan.run_again_at(when),
                    Err(error) => tracing::error!(
                        key = %execution.key(), %error,
                        "cannot compute the next run of a cron task; its chain ends"
                    ),
                }
            }
            (None, _) => return,
        }
        if let Some(args) = args {
            plan.set_args(args);
        }
    }
}

impl Behavior for PerpetualBehavior {
    async fn on_failure(&self, execution: &Execution, _error: &TaskError, plan: &mut Plan) {
        Self::plan(execution, plan).await;
    }

    async fn on_completion(&self, execution: &Execution, plan: &mut Plan) {
        Self::plan(execution, plan).await;
    }
}
