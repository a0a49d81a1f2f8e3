//! The run-time half of strikes: a call added before its strike is cancelled when a
//! worker would run it.

use crate::behaviors::{Admission, Behavior, BoxFuture};
use crate::execution::Execution;

/// Refuses runs that a strike in effect blocks (the record ends CANCELLED).
pub(crate) struct StrikeBehavior;

impl Behavior for StrikeBehavior {
    fn admit<'a>(&'a self, execution: &'a Execution) -> BoxFuture<'a, Admission> {
        Box::pin(async move {
            match execution
                .docket()
                .strike_list()
                .blocking(execution.function(), execution.args())
            {
                Some(strike) => Admission::Cancel(format!("stricken by `{strike}`")),
                None => Admission::Run,
            }
        })
    }
}
