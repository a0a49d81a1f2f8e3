//! Admission rules: what a task's attribute declares about when its calls may run.
//!
//! - `concurrency(max = N, arg = ..)`: at most N runs at once, per task or per argument
//!   value; a call finding no free slot waits for one (FIFO, woken as slots free).
//! - `cooldown = ".."`: a call within the window after a run starts is dropped.
//! - `rate_limit(N, per = "..")`: at most N runs per sliding window; over it, a call is
//!   delayed until there is room (or dropped, with `drop`).
//! - `debounce = ".."`: calls are coalesced when they are added; the last one runs once
//!   calls have stopped for the settle time.
//!
//! Each rule is decided by the store, atomically for the whole fleet (a Lua script on
//! Redis, a critical section in memory), and is a [`Behavior`](super::Behavior) like any
//! other: a worker asks the rules a task declares after the other behaviours.

mod concurrency;
mod cooldown;
pub(crate) mod debounce;
mod rate_limit;

use std::sync::Arc;
use std::time::Duration;

use super::ErasedBehavior;
use crate::execution::Execution;
use crate::model::TaskOptions;

/// The rules a task with `options` declares, in the order they are asked: cooldown,
/// rate limit, concurrency limit (the slot is taken last, once nothing else refused).
pub(super) fn rules(
    options: &TaskOptions,
    lease: Duration,
    retry_in: Duration,
) -> impl Iterator<Item = Arc<dyn ErasedBehavior>> {
    let cooldown = options
        .cooldown
        .map(|window| Arc::new(cooldown::Cooldown { window, retry_in }) as Arc<dyn ErasedBehavior>);
    let rate = options.rate_limit.map(|limit| {
        Arc::new(rate_limit::RateLimiting { limit, retry_in }) as Arc<dyn ErasedBehavior>
    });
    let concurrency = options.concurrency.map(|limit| {
        Arc::new(concurrency::Concurrency {
            limit,
            lease,
            retry_in,
        }) as Arc<dyn ErasedBehavior>
    });
    [cooldown, rate, concurrency].into_iter().flatten()
}

/// `base`, or `base:arg=value` for a rule kept per argument value.
fn scope(base: &str, arg: Option<&str>, execution: &Execution) -> String {
    let Some(arg) = arg else {
        return base.to_owned();
    };
    let value = serde_json::from_str::<serde_json::Value>(execution.args())
        .ok()
        .and_then(|args| args.get(arg).cloned())
        .unwrap_or(serde_json::Value::Null);
    format!("{base}:{arg}={value}")
}

/// A rule the store could not decide (it is unreachable): the run is deferred rather
/// than run unchecked.
fn undecided(execution: &Execution, error: &crate::Error, retry_in: Duration) -> super::Admission {
    tracing::warn!(key = %execution.key(), %error, "cannot check admission; deferring the run");
    parked(execution);
    super::Admission::Defer(retry_in)
}

/// Counts a run a rule parked (deferred, or waiting for a slot).
fn parked(execution: &Execution) {
    let worker = execution.worker().map(crate::model::WorkerInfo::name);
    crate::observe::metrics::count(
        "docket_tasks_parked",
        crate::observe::metrics::labels(&execution.core().name, worker, Some(execution.function())),
        1,
    );
}
