//! The run-time half of strikes: a call added before its strike is refused when a
//! worker would run it (the record ends CANCELLED).

use super::Strike;
use crate::execution::Execution;

/// The strike in effect that blocks this run, if any.
pub(crate) fn blocking(execution: &Execution) -> Option<Strike> {
    execution
        .docket()
        .strike_list()
        .blocking(execution.function(), execution.args())
}
