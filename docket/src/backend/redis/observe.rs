//! Reading the docket: records, results, progress, snapshots, the clock, and the worker
//! registry fed by heartbeats. (Events are followed in [`super::subscriber`].)

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

use super::Shared;
use super::scripts::SCRIPTS;
use super::wire::{duration_millis, from_epoch_millis, parse_progress, parse_record, text_fields};
use crate::backend::{ACTIVITY_INTERVAL, ACTIVITY_KEPT, LiveTasks, ProgressUpdate};
use crate::error::Result;
use crate::model::{
    ActiveWorker, Activity, ActivityInterval, ExecutionRecord, Listing, Page, ProgressState,
    TaskCounts,
};

/// The fields of a hash, as text.
async fn hash(shared: &Shared, key: String) -> Result<std::collections::HashMap<String, String>> {
    let reply: Value = redis::cmd("HGETALL")
        .arg(key)
        .query_async(&mut shared.connection())
        .await?;
    Ok(text_fields(&reply))
}

pub(super) async fn record(shared: &Shared, key: &str) -> Result<Option<ExecutionRecord>> {
    let fields = hash(shared, shared.keys.record(key)).await?;
    parse_record(key, &fields)
}

pub(super) async fn result(shared: &Shared, key: &str, generation: u64) -> Result<Option<String>> {
    let stored: Option<String> = redis::cmd("GET")
        .arg(shared.keys.result(key, generation))
        .query_async(&mut shared.connection())
        .await?;
    Ok(stored)
}

pub(super) async fn progress(shared: &Shared, key: &str) -> Result<Option<ProgressState>> {
    let fields = hash(shared, shared.keys.progress(key)).await?;
    Ok(parse_progress(&fields))
}

/// Applies a progress update (progress.lua). Fire-and-forget dockets keep no progress.
pub(super) async fn report_progress(
    shared: &Shared,
    key: &str,
    update: ProgressUpdate,
) -> Result<()> {
    if shared.ttl_ms == 0 {
        return Ok(());
    }
    let (op, value) = match update {
        ProgressUpdate::SetTotal(total) => ("total", total.to_string()),
        ProgressUpdate::Increment(by) => ("increment", by.to_string()),
        ProgressUpdate::SetMessage(message) => ("message", message),
    };
    let _: i64 = SCRIPTS
        .progress
        .key(shared.keys.record(key))
        .key(shared.keys.progress(key))
        .arg(shared.keys.prefix())
        .arg(key)
        .arg(op)
        .arg(value)
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(())
}

/// Records a heartbeat (heartbeat.lua).
pub(super) async fn heartbeat(
    shared: &Shared,
    worker: &str,
    tasks: &[&'static str],
    expire_after: Duration,
    activity: Activity,
) -> Result<()> {
    let _: i64 = SCRIPTS
        .heartbeat
        .key(shared.keys.workers())
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(duration_millis(expire_after).max(1))
        .arg(activity.succeeded)
        .arg(activity.failed)
        .arg(activity.retried)
        .arg(duration_millis(ACTIVITY_INTERVAL))
        .arg(duration_millis(ACTIVITY_KEPT))
        .arg(tasks)
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(())
}

/// Removes a stopped worker from the registries.
pub(super) async fn leave(shared: &Shared, worker: &str, tasks: &[&'static str]) -> Result<()> {
    let mut pipeline = redis::pipe();
    pipeline
        .cmd("ZREM")
        .arg(shared.keys.workers())
        .arg(worker)
        .ignore();
    pipeline
        .cmd("DEL")
        .arg(shared.keys.worker_tasks(worker))
        .ignore();
    for task in tasks {
        pipeline
            .cmd("ZREM")
            .arg(shared.keys.task_workers(task))
            .arg(worker)
            .ignore();
    }
    let () = pipeline.query_async(&mut shared.connection()).await?;
    // A stopping sweeper hands the sweep to the others at once.
    let lock = shared.keys.redelivery_lock();
    let holder: Option<String> = redis::cmd("GET")
        .arg(&lock)
        .query_async(&mut shared.connection())
        .await?;
    if holder.as_deref() == Some(worker) {
        let _: i64 = redis::cmd("DEL")
            .arg(&lock)
            .query_async(&mut shared.connection())
            .await?;
    }
    Ok(())
}

/// The workers of the registry (or of one task's), with their tasks. A worker whose
/// task list has expired (it stopped sending heartbeats) is left out even before a
/// live worker's heartbeat prunes it.
pub(super) async fn workers(shared: &Shared, task: Option<&str>) -> Result<Vec<ActiveWorker>> {
    let registry = task.map_or_else(
        || shared.keys.workers(),
        |task| shared.keys.task_workers(task),
    );
    let seen: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(registry)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut shared.connection())
        .await?;
    if seen.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipeline = redis::pipe();
    for (worker, _) in &seen {
        pipeline
            .cmd("SMEMBERS")
            .arg(shared.keys.worker_tasks(worker));
    }
    let tasks: Vec<Vec<String>> = pipeline.query_async(&mut shared.connection()).await?;
    Ok(seen
        .into_iter()
        .zip(tasks)
        .filter(|(_, tasks)| !tasks.is_empty())
        .map(|((name, last_seen), mut tasks)| {
            tasks.sort();
            ActiveWorker {
                name,
                // Scores are whole milliseconds since the epoch.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                last_seen: from_epoch_millis(last_seen.max(0.0) as u64),
                tasks,
            }
        })
        .collect())
}

/// `(key, record fields)` pairs as the listing scripts return them.
type Listed = Vec<(String, Value)>;

/// The records of listed pairs; one that cannot be read is logged and left out.
fn listed_records(shared: &Shared, listed: Listed) -> Vec<ExecutionRecord> {
    listed
        .into_iter()
        .filter_map(
            |(key, fields)| match parse_record(&key, &text_fields(&fields)) {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!(docket = %shared.keys.prefix(), "{error}");
                    None
                }
            },
        )
        .collect()
}

/// Every live task with its record, read in one script (live.lua).
pub(super) async fn live(shared: &Shared) -> Result<LiveTasks> {
    let (scheduled, queued, running): (Listed, Listed, Listed) = SCRIPTS
        .live
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .invoke_async(&mut shared.connection())
        .await?;
    let records = |listed| listed_records(shared, listed);
    Ok(LiveTasks {
        queued: records(queued),
        scheduled: records(scheduled),
        running: records(running),
    })
}

/// One page of a listing, read in one script (page.lua).
pub(super) async fn page(
    shared: &Shared,
    listing: Listing,
    after: &str,
    limit: usize,
) -> Result<Page> {
    let (next, listed): (String, Listed) = SCRIPTS
        .page
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(listing.as_str())
        .arg(after)
        .arg(limit.max(1))
        .invoke_async(&mut shared.connection())
        .await?;
    let next = (!next.is_empty()).then_some(next);
    Ok(Page::new(listed_records(shared, listed), next))
}

/// The activity history from `since` on: the intervals' hashes, read in one pipeline.
pub(super) async fn activity(shared: &Shared, since: SystemTime) -> Result<Vec<ActivityInterval>> {
    let interval_ms = duration_millis(ACTIVITY_INTERVAL);
    let millis =
        |at: SystemTime| duration_millis(at.duration_since(UNIX_EPOCH).unwrap_or_default());
    let now = now(shared).await?;
    let kept_from = now.checked_sub(ACTIVITY_KEPT).unwrap_or(UNIX_EPOCH);
    let first = millis(since.max(kept_from)) / interval_ms;
    let last = millis(now) / interval_ms;
    if first > last {
        return Ok(Vec::new());
    }
    let mut pipeline = redis::pipe();
    for interval in first..=last {
        pipeline
            .cmd("HMGET")
            .arg(shared.keys.activity(interval))
            .arg("s")
            .arg("f")
            .arg("r");
    }
    let counts: Vec<(Option<u64>, Option<u64>, Option<u64>)> =
        pipeline.query_async(&mut shared.connection()).await?;
    Ok((first..=last)
        .zip(counts)
        .filter_map(|(interval, (s, f, r))| {
            let activity = Activity::new(s.unwrap_or(0), f.unwrap_or(0), r.unwrap_or(0));
            (!activity.is_empty())
                .then(|| ActivityInterval::new(from_epoch_millis(interval * interval_ms), activity))
        })
        .collect())
}

/// How many tasks are live, read in one script (counts.lua).
pub(super) async fn live_counts(shared: &Shared) -> Result<TaskCounts> {
    let (queued, scheduled, running): (usize, usize, usize) = SCRIPTS
        .counts
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(TaskCounts {
        queued,
        scheduled,
        running,
    })
}

/// The server clock (`TIME`).
pub(super) async fn now(shared: &Shared) -> Result<SystemTime> {
    let (seconds, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut shared.connection())
        .await?;
    Ok(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros))
}
