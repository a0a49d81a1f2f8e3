//! Reading the docket: records, results, progress, events, snapshots, the clock, and
//! the worker registry fed by heartbeats.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use redis::Value;

use super::Shared;
use super::scripts::SCRIPTS;
use super::wire::{duration_millis, from_epoch_millis, parse_progress, parse_record, text_fields};
use crate::backend::{Cancelled, EventStream, LiveCounts, LiveTasks, ProgressUpdate};
use crate::error::Result;
use crate::model::{ActiveWorker, Event, ExecutionRecord, ProgressState};

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

/// How long a subscription counts as listening without a renewal; it is renewed three
/// times as often, and ended as soon as its stream is dropped.
const LISTEN_LEASE: Duration = Duration::from_secs(30);

/// Starts, renews (`lease` > 0) or ends (`lease` = 0) subscription `id` in
/// `{p}:listeners` (listen.lua).
async fn listen(shared: &Shared, id: &str, lease: Duration) -> Result<()> {
    let _: i64 = SCRIPTS
        .listen
        .key(shared.keys.listeners())
        .arg(shared.keys.prefix())
        .arg(id)
        .arg(duration_millis(lease))
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(())
}

/// Follows `{p}:state:{key}` and `{p}:progress:{key}` on a dedicated connection. The
/// stream ends when that connection is lost.
///
/// Scripts publish per-task events only while someone listens, so the subscription is
/// registered in `{p}:listeners` once it is made (anything that happens after this
/// returns is published; the caller reads the record for what happened before), renewed
/// while the stream lives, and removed when it is dropped.
pub(super) async fn subscribe(shared: &Arc<Shared>, key: &str) -> Result<EventStream> {
    let mut pubsub = shared.endpoint.pubsub().await?;
    pubsub
        .subscribe(&[
            shared.keys.state_channel(key),
            shared.keys.progress_channel(key),
        ])
        .await?;
    let id = uuid::Uuid::now_v7().to_string();
    listen(shared, &id, LISTEN_LEASE).await?;
    let (guard, dropped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(keep_listening(Arc::clone(shared), id, dropped));
    let events = pubsub.into_on_message().filter_map(move |message| {
        let event = serde_json::from_slice::<Event>(message.get_payload_bytes());
        futures::future::ready(match event {
            Ok(event) => Some(event),
            Err(error) => {
                tracing::warn!(
                    channel = %message.get_channel_name(),
                    "ignoring an unreadable event: {error}"
                );
                None
            }
        })
    });
    // The stream owns the guard: dropping the stream, or its end (the connection was
    // lost), ends the registration.
    let release = futures::stream::once(async move { drop(guard) })
        .filter_map(|()| futures::future::ready(None));
    Ok(Box::pin(events.chain(release)))
}

/// Renews subscription `id` until its stream is dropped or ends, then ends it. A renewal that
/// fails (Redis unreachable) is tried again at the next turn; a subscription whose ending
/// fails lapses with its lease.
async fn keep_listening(
    shared: Arc<Shared>,
    id: String,
    mut dropped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut renew = tokio::time::interval(LISTEN_LEASE / 3);
    renew.tick().await;
    loop {
        tokio::select! {
            _ = &mut dropped => break,
            _ = renew.tick() => {
                if let Err(error) = listen(&shared, &id, LISTEN_LEASE).await {
                    tracing::debug!(subscription = %id, "could not renew a subscription: {error}");
                }
            }
        }
    }
    let _ = listen(&shared, &id, Duration::ZERO).await;
}

/// Follows every `{p}:cancel:{key}` channel on a dedicated connection, yielding keys. The
/// stream ends when that connection is lost.
///
/// `PSUBSCRIBE {p}:cancel:*` is refused to a user whose ACL grants only `&{p}:*` (Redis
/// compares subscribed patterns literally with the granted ones); it then follows
/// `{p}:*`, which that rule grants, and keeps only the cancellations.
pub(super) async fn cancellations(
    shared: &Shared,
) -> Result<Pin<Box<dyn Stream<Item = Cancelled> + Send>>> {
    let mut pubsub = shared.endpoint.pubsub().await?;
    if let Err(error) = pubsub.psubscribe(shared.keys.cancel_pattern()).await {
        if error.kind() != redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) {
            return Err(error.into());
        }
        tracing::debug!(
            docket = %shared.keys.prefix(),
            "cannot follow `{}` ({error}); following `{}` instead",
            shared.keys.cancel_pattern(),
            shared.keys.docket_pattern(),
        );
        pubsub.psubscribe(shared.keys.docket_pattern()).await?;
    }
    let keys = shared.keys.clone();
    let cancelled = pubsub.into_on_message().filter_map(move |message| {
        let cancelled = keys
            .key_of_cancel_channel(message.get_channel_name())
            .map(|key| Cancelled {
                key: key.to_owned(),
                // Earlier versions published the key: then any run of it.
                generation: message
                    .get_payload::<String>()
                    .ok()
                    .and_then(|g| g.parse().ok()),
            });
        futures::future::ready(cancelled)
    });
    Ok(Box::pin(cancelled))
}

/// Records a heartbeat (heartbeat.lua).
pub(super) async fn heartbeat(
    shared: &Shared,
    worker: &str,
    tasks: &[&'static str],
    expire_after: Duration,
) -> Result<()> {
    let _: i64 = SCRIPTS
        .heartbeat
        .key(shared.keys.workers())
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(duration_millis(expire_after).max(1))
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

/// Every live task with its record, read in one script (live.lua).
pub(super) async fn live(shared: &Shared) -> Result<LiveTasks> {
    type Listed = Vec<(String, Value)>;
    let (scheduled, queued, running): (Listed, Listed, Listed) = SCRIPTS
        .live
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .invoke_async(&mut shared.connection())
        .await?;
    let records = |listed: Listed| -> Vec<ExecutionRecord> {
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
    };
    Ok(LiveTasks {
        queued: records(queued),
        scheduled: records(scheduled),
        running: records(running),
    })
}

/// How many tasks are live, read in one script (counts.lua).
pub(super) async fn live_counts(shared: &Shared) -> Result<LiveCounts> {
    let (queued, scheduled, running): (usize, usize, usize) = SCRIPTS
        .counts
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(LiveCounts {
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
