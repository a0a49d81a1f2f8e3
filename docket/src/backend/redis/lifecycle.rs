//! The state transitions producers and workers drive: schedule, finish, promote, cancel
//! and clear, each one script; the dead letters; named leases.

use std::time::Duration;

use super::Shared;
use super::scripts::SCRIPTS;
use super::wire;
use super::wire::{due_args, duration_millis, next_args, parse_time};
use crate::backend::{
    DeadLetter, Finish, FinishOutcome, NewTask, Outcome, Output, Promotion, SLOT_LEASE,
    ScheduleOutcome, Wait,
};
use crate::error::{Error, Result};
use crate::model::{Disposition, When};

/// Schedules a batch in one script: add.lua when every call is [`generated`], else
/// schedule.lua.
pub(super) async fn schedule(shared: &Shared, tasks: &[NewTask]) -> Result<Vec<ScheduleOutcome>> {
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    if tasks.iter().all(generated) {
        return queue_generated(shared, tasks).await;
    }
    let keys = &shared.keys;
    let mut invocation = SCRIPTS.schedule.prepare_invoke();
    invocation
        .key(keys.stream())
        .key(keys.queue())
        .arg(keys.prefix())
        .arg(shared.ttl_ms)
        .arg(tasks.len());
    for task in tasks {
        // A generated key is sent short.
        let message = &task.message;
        if generated(task) {
            invocation
                .arg(3)
                .arg(&message.key)
                .arg(&message.function)
                .arg(&message.args);
            continue;
        }
        let (due_kind, due_ms) = due_args(task.due);
        invocation
            .arg(8)
            .arg(&message.key)
            .arg(&message.function)
            .arg(&message.args)
            .arg(due_kind)
            .arg(due_ms)
            .arg(message.attempt)
            .arg(if task.replace { "1" } else { "0" })
            .arg(message.traceparent.as_deref().unwrap_or(""));
    }
    let reply: Vec<String> = shared.write(&invocation).await?.acknowledged()?;
    if reply.len() != tasks.len() * 3 {
        return Err(Error::Protocol(format!(
            "schedule.lua answered {} values for {} calls",
            reply.len(),
            tasks.len()
        )));
    }
    reply
        .chunks_exact(3)
        .zip(tasks)
        .map(|(answer, task)| {
            let bad = |what: &str| {
                Error::Protocol(format!("scheduling `{}` answered {what}", task.message.key))
            };
            Ok(ScheduleOutcome {
                disposition: answer[0]
                    .parse::<Disposition>()
                    .map_err(|reason| bad(&reason))?,
                generation: answer[1]
                    .parse()
                    .map_err(|_| bad(&format!("the generation `{}`", answer[1])))?,
                when: parse_time(&answer[2])
                    .ok_or_else(|| bad(&format!("the due time `{}`", answer[2])))?,
            })
        })
        .collect()
}

/// A call under a key the producer generated for it (the common `add`), due now on its
/// first attempt, without trace context: queued without looking for a record.
fn generated(task: &NewTask) -> bool {
    task.fresh
        && task.due == When::Now
        && task.message.attempt == 1
        && !task.replace
        && task.message.traceparent.is_none()
}

/// Queues a batch of [`generated`] calls (add.lua): each is generation 1, queued now.
async fn queue_generated(shared: &Shared, tasks: &[NewTask]) -> Result<Vec<ScheduleOutcome>> {
    let mut invocation = SCRIPTS.add.key(shared.keys.stream());
    invocation
        .arg(shared.keys.prefix())
        .arg(tasks.len())
        .arg(shared.ttl_ms);
    for task in tasks {
        invocation
            .arg(&task.message.key)
            .arg(&task.message.function)
            .arg(&task.message.args);
    }
    let when: String = shared.write(&invocation).await?.acknowledged()?;
    let when = parse_time(&when)
        .ok_or_else(|| Error::Protocol(format!("add.lua answered the due time `{when}`")))?;
    Ok(tasks
        .iter()
        .map(|_| ScheduleOutcome {
            disposition: Disposition::Scheduled,
            generation: 1,
            when,
        })
        .collect())
}

/// Records a batch of finished runs in one script (finish.lua).
pub(super) async fn finish(
    shared: &Shared,
    worker: &str,
    runs: Vec<Finish>,
) -> Result<Vec<FinishOutcome>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut invocation = SCRIPTS.finish.prepare_invoke();
    invocation
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(shared.ttl_ms)
        .arg(duration_millis(SLOT_LEASE))
        .arg(runs.len());
    for run in &runs {
        let (state, error, result) = match &run.outcome {
            Outcome::Completed { result } => ("COMPLETED", String::new(), result.as_ref()),
            Outcome::Failed { error } => ("FAILED", error.to_json(), None),
            Outcome::Cancelled => ("CANCELLED", String::new(), None),
            Outcome::Refused { error } => ("CANCELLED", error.to_json(), None),
            Outcome::Deferred => ("DEFERRED", String::new(), None),
        };
        let next = run.next.as_ref();
        // A run that neither goes on nor held a slot (most) sends 7 arguments, not 15.
        let plain = next.is_none() && run.release.is_none();
        invocation
            .arg(if plain { 7 } else { 15 })
            .arg(run.delivery.to_string())
            .arg(&run.key)
            .arg(run.generation)
            .arg(state)
            .arg(error)
            .arg(match result {
                None => "0",
                Some(Output::Value(_)) => "1",
                Some(Output::InStore(_)) => "2",
            })
            .arg(match result {
                None => "",
                Some(Output::Value(text) | Output::InStore(text)) => text.as_str(),
            });
        if plain {
            continue;
        }
        // A run that waits for a slot held none (it did not run): one scope says which.
        let awaited = next.and_then(|n| match &n.wait {
            Some(Wait::Slot(slot)) => Some(slot),
            _ => None,
        });
        let release = if run.release.is_some() { "1" } else { "0" };
        let slot = run.release.as_ref().or(awaited);
        let (next_kind, next_ms) = next_args(next.map(|n| (n.due, n.wait.as_ref())));
        invocation
            .arg(next_kind)
            .arg(next_ms)
            .arg(next.map_or(0, |n| n.attempt))
            .arg(next.and_then(|n| n.args.as_deref()).unwrap_or(""))
            .arg(next.and_then(|n| n.traceparent.as_deref()).unwrap_or(""))
            .arg(release)
            .arg(slot.map_or("", |s| s.scope.as_str()))
            .arg(slot.map_or(0, |s| s.max));
    }
    let reply: Vec<String> = shared.write(&invocation).await?.recorded(worker);
    if reply.len() != runs.len() {
        return Err(Error::Protocol(format!(
            "finish.lua answered {} values for {} runs",
            reply.len(),
            runs.len()
        )));
    }
    reply
        .iter()
        .map(|answer| match answer.as_str() {
            "recorded" => Ok(FinishOutcome::Recorded),
            "superseded" => Ok(FinishOutcome::Superseded),
            "fenced" => Ok(FinishOutcome::Fenced),
            other => Err(Error::Protocol(format!(
                "finish.lua answered the unknown outcome `{other}`"
            ))),
        })
        .collect()
}

/// Moves due tasks to the stream (promote.lua).
pub(super) async fn promote_due(shared: &Shared, limit: usize) -> Result<Promotion> {
    let (moved, next_due_ms): (usize, i64) = SCRIPTS
        .promote
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(limit)
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(Promotion {
        moved,
        next_due_in: u64::try_from(next_due_ms).ok().map(Duration::from_millis),
    })
}

/// Cancels one key (cancel.lua).
pub(super) async fn cancel(shared: &Shared, key: &str) -> Result<bool> {
    let cancelled: i64 = SCRIPTS
        .cancel
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(key)
        .arg(shared.ttl_ms)
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(cancelled == 1)
}

/// Removes every scheduled and queued task (clear.lua).
pub(super) async fn clear(shared: &Shared) -> Result<usize> {
    let removed: usize = SCRIPTS
        .clear
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(shared.ttl_ms)
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(removed)
}

/// The dead letters (a hash of JSON objects by key).
pub(super) async fn dead_letters(shared: &Shared) -> Result<Vec<DeadLetter>> {
    let entries: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(shared.keys.dead_letters())
        .query_async(&mut shared.connection())
        .await?;
    entries
        .into_iter()
        .map(|(key, json)| wire::dead_letter(key, &json))
        .collect()
}

/// Forgets one dead letter; false when there was none for `key`.
pub(super) async fn forget_dead_letter(shared: &Shared, key: &str) -> Result<bool> {
    let removed: i64 = redis::cmd("HDEL")
        .arg(shared.keys.dead_letters())
        .arg(key)
        .query_async(&mut shared.connection())
        .await?;
    Ok(removed > 0)
}

/// Takes the lease `name` for `holder` for `ttl` unless someone else holds it.
pub(super) async fn try_lock(
    shared: &Shared,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool> {
    let taken: Option<String> = redis::cmd("SET")
        .arg(shared.keys.lock(name))
        .arg(holder)
        .arg("NX")
        .arg("PX")
        .arg(duration_millis(ttl).max(1))
        .query_async(&mut shared.connection())
        .await?;
    Ok(taken.is_some())
}
