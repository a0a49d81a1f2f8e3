//! `debounce = ".."`: the trailing edge. Calls are coalesced when they are added: each
//! replaces the one waiting, due once calls have stopped for the settle time, so the task
//! runs once after a burst.

use std::time::Duration;

use crate::model::When;

/// How a call of a task debounced by `settle` is scheduled: under its own key, or else
/// the key every such call of the task shares (`debounce:{task}`); replacing the call
/// waiting there; due `settle` from now.
pub(crate) fn schedule(function: &str, key: Option<String>, settle: Duration) -> (String, When) {
    let key = key.unwrap_or_else(|| format!("debounce:{function}"));
    (key, When::After(settle))
}
