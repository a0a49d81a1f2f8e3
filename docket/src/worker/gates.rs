//! The built-in admission controls a task declares (SPEC §6): cooldown, rate limit and
//! concurrency limit, checked in that order once the behaviours admitted a run.
//! (Debounce acts when calls are added: see `Docket::add`.)

use std::time::Duration;

use super::Shared;
use crate::backend::{AdmissionCheck, Slot};
use crate::execution::Execution;
use crate::task::TaskOptions;

/// What the controls decided.
pub(super) enum Gate {
    /// Run, holding this slot if the task has a concurrency limit.
    Run(Option<Slot>),
    /// Come back later (a rate limit without room).
    Defer(Duration),
    /// Do not run (a cooldown, a dropping rate limit): CANCELLED with the reason.
    Drop(String),
    /// Wait for a slot of this scope (FIFO, woken when one frees).
    Wait(Slot),
}

/// `base`, or `base:arg=value` for limits kept per argument value.
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

pub(super) async fn check(shared: &Shared, execution: &Execution, options: &TaskOptions) -> Gate {
    match gates(shared, execution, options).await {
        Ok(gate) => gate,
        Err(error) => {
            // The store is unreachable: try again shortly rather than run unchecked.
            tracing::warn!(key = %execution.key(), %error, "cannot check admission; deferring the run");
            Gate::Defer(
                shared
                    .settings
                    .reconnection_delay
                    .max(Duration::from_millis(100)),
            )
        }
    }
}

async fn gates(
    shared: &Shared,
    execution: &Execution,
    options: &TaskOptions,
) -> crate::Result<Gate> {
    let backend = shared.docket.backend();
    let task = execution.function();
    if let Some(window) = options.cooldown {
        let check = AdmissionCheck::Cooldown {
            scope: task.to_owned(),
            window,
        };
        if backend.admission(check).await?.is_some() {
            return Ok(Gate::Drop(format!(
                "cooldown: `{task}` ran less than {window:?} ago"
            )));
        }
    }
    if let Some(limit) = options.rate_limit {
        let check = AdmissionCheck::Rate {
            scope: scope(task, limit.arg, execution),
            member: format!("{}:{}", execution.key(), execution.generation()),
            limit: limit.limit,
            per: limit.per,
        };
        if let Some(wait) = backend.admission(check).await? {
            return Ok(if limit.drop {
                Gate::Drop(format!(
                    "rate limit: `{task}` already ran {} times in the last {:?}",
                    limit.limit, limit.per
                ))
            } else {
                tracing::info!(key = %execution.key(), task, wait = ?wait, "rate limit reached: delaying the run");
                Gate::Defer(wait)
            });
        }
    }
    if let Some(limit) = options.concurrency {
        let slot = Slot {
            scope: scope(limit.scope.unwrap_or(task), limit.arg, execution),
            max: limit.max,
        };
        let check = AdmissionCheck::Slot {
            slot: slot.clone(),
            key: execution.key().to_owned(),
            lease: shared.settings.redelivery_timeout,
        };
        if backend.admission(check).await?.is_some() {
            return Ok(Gate::Wait(slot));
        }
        return Ok(Gate::Run(Some(slot)));
    }
    Ok(Gate::Run(None))
}
