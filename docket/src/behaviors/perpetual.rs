//! Perpetual and cron tasks: after every run (success or final failure) the same key
//! runs again, `every` after this run started or at the next cron time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::control::Chosen;
use super::{Behavior, BoxFuture, Plan, RunControl, cron};
use crate::error::{Error, Result, TaskError};
use crate::execution::Execution;
use crate::inject::FromExecution;
use crate::task::{Schedule, Task};

/// A running task's say over its perpetual chain: stop it, move the next run, or change
/// the next run's arguments.
///
/// ```
/// use std::time::Duration;
/// use docket::Perpetual;
///
/// #[docket::task(perpetual = "1m")]
/// async fn poll_feed(cursor: u64, perpetual: Perpetual) -> docket::Result<()> {
///     let next_cursor = cursor + 10;
///     if next_cursor > 1_000 {
///         perpetual.cancel(); // the feed is done: no next run
///     } else {
///         perpetual.perpetuate(PollFeed::new(next_cursor))?;
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Perpetual {
    control: Option<Arc<RunControl>>,
    function: String,
}

impl Perpetual {
    /// Ends the chain: no run follows this one.
    pub fn cancel(&self) {
        if let Some(control) = &self.control {
            control.perpetual().cancelled = true;
        }
    }

    /// The next run is due `delay` after this one ends, instead of on the cadence.
    pub fn after(&self, delay: Duration) {
        self.choose(Chosen::After(delay));
    }

    /// The next run is due at `when`.
    pub fn at(&self, when: SystemTime) {
        self.choose(Chosen::At(when));
    }

    /// The next run takes these arguments.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when `task` is a call to another task, and
    /// [`Error::Serialize`] when its arguments cannot be serialized.
    // Takes the call by value, as `Docket::add` does: `perpetuate(PollFeed::new(n))`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn perpetuate<T: Task>(&self, task: T) -> Result<()> {
        if T::NAME != self.function {
            return Err(Error::InvalidOption {
                name: "perpetuate",
                value: T::NAME.to_owned(),
                reason: format!("a run of `{}` can only perpetuate itself", self.function),
            });
        }
        let args = serde_json::to_string(&task).map_err(|source| Error::Serialize {
            function: T::NAME.to_owned(),
            source,
        })?;
        if let Some(control) = &self.control {
            control.perpetual().args = Some(args);
        }
        Ok(())
    }

    fn choose(&self, when: Chosen) {
        if let Some(control) = &self.control {
            let mut choice = control.perpetual();
            choice.cancelled = false;
            choice.next = Some(when);
        }
    }
}

impl FromExecution for Perpetual {
    type Rejection = Infallible;

    async fn from_execution(execution: &Execution) -> std::result::Result<Self, Self::Rejection> {
        Ok(Self {
            control: execution.control().cloned(),
            function: execution.function().to_owned(),
        })
    }
}

/// Plans the next run of perpetual and cron tasks (and of any task whose run chose one
/// through [`Perpetual`]), unless a retry is planned or the run ended the chain.
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
            (Some(Chosen::After(delay)), _) => plan.run_again_after(delay),
            (Some(Chosen::At(when)), _) => plan.run_again_at(when),
            (None, Some(Schedule::Every(every))) => plan.run_again_every(every),
            (
                None,
                Some(Schedule::Cron {
                    expression,
                    time_zone,
                }),
            ) => {
                let now = execution
                    .docket()
                    .backend()
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
    fn on_failure<'a>(
        &'a self,
        execution: &'a Execution,
        _error: &'a TaskError,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(Self::plan(execution, plan))
    }

    fn on_completion<'a>(
        &'a self,
        execution: &'a Execution,
        plan: &'a mut Plan,
    ) -> BoxFuture<'a, ()> {
        Box::pin(Self::plan(execution, plan))
    }
}
