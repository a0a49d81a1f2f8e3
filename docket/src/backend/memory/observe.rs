//! Watching an in-memory docket: records, results, progress, events, cancellations,
//! heartbeats and the workers they register, live tasks.

use std::ops::Bound;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use super::MemoryBackend;
use super::store::{Beat, Record};
use crate::backend::{
    ACTIVITY_INTERVAL, ACTIVITY_KEPT, Cancelled, EventStream, LiveTasks, ProgressUpdate,
};
use crate::model::{
    ActiveWorker, Activity, ActivityInterval, Event, ExecutionRecord, ExecutionState, Listing,
    Page, ProgressState, TaskCounts,
};

impl MemoryBackend {
    pub(super) fn record_of(&self, key: &str) -> Option<ExecutionRecord> {
        let now = Instant::now();
        self.state().record(key, now).map(|r| r.to_execution(key))
    }

    pub(super) fn result_of(&self, key: &str, generation: u64) -> Option<String> {
        let now = Instant::now();
        let state = self.state();
        state
            .results
            .get(&(Arc::from(key), generation))
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.as_ref().to_owned())
    }

    pub(super) fn progress_of(&self, key: &str) -> Option<ProgressState> {
        self.state().progress.get(key).cloned()
    }

    /// Applies a progress update of a running key; fire-and-forget dockets keep none.
    pub(super) fn apply_progress(&self, key: &str, update: ProgressUpdate) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if !state
            .live(key)
            .is_some_and(|record| record.state == ExecutionState::Running)
        {
            return;
        }
        let progress = state.progress.entry(key.to_owned()).or_default();
        match update {
            ProgressUpdate::SetTotal(total) => progress.total = Some(total),
            ProgressUpdate::Increment(amount) => {
                progress.current = progress.current.saturating_add(amount);
            }
            ProgressUpdate::SetMessage(message) => progress.message = Some(message),
        }
        let snapshot = progress.clone();
        drop(state);
        self.publish(key, || Event::Progress(snapshot));
    }

    /// A follower of `key`'s events; its stream ends only if it stops reading for so
    /// long that its inbox overflows.
    pub(super) fn events_of(&self, key: &str) -> EventStream {
        Box::pin(self.store.subscriptions.follow(key))
    }

    pub(super) fn cancel_requests(&self) -> Pin<Box<dyn Stream<Item = Cancelled> + Send>> {
        let keys = BroadcastStream::new(self.store.cancels.subscribe())
            .filter_map(|item| std::future::ready(item.ok()));
        Box::pin(keys)
    }

    /// Records a heartbeat: the worker's tasks (sorted, once each) and when it lapses
    /// without another; forgets the workers not seen for `expire_after`; queues the calls
    /// of its tasks that wait for a worker serving them.
    pub(super) fn beat(
        &self,
        worker: &str,
        tasks: &[&'static str],
        expire_after: Duration,
        activity: Activity,
    ) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let mut tasks: Vec<String> = tasks.iter().map(|t| (*t).to_owned()).collect();
        tasks.sort_unstable();
        tasks.dedup();
        let mut state = self.state();
        if !activity.is_empty() {
            let interval = interval_of(state.wall());
            state.activity.entry(interval).or_default().add(activity);
            let kept = interval.saturating_sub(intervals_kept());
            state.activity.retain(|number, _| *number > kept);
        }
        let queued: usize = tasks
            .iter()
            .map(|task| self.serve_waiters(&mut state, task))
            .sum();
        state.workers.insert(
            worker.to_owned(),
            Beat {
                worker: ActiveWorker {
                    name: worker.to_owned(),
                    last_seen: wall,
                    tasks,
                },
                lapses: now + expire_after,
            },
        );
        state.workers.retain(|_, beat| {
            wall.duration_since(beat.worker.last_seen)
                .unwrap_or_default()
                < expire_after
        });
        drop(state);
        if queued > 0 {
            self.store.ready.notify_waiters();
        }
    }

    pub(super) fn forget_worker(&self, worker: &str) {
        let mut state = self.state();
        state.workers.remove(worker);
        if state
            .sweep_lock
            .as_ref()
            .is_some_and(|(holder, _)| holder == worker)
        {
            state.sweep_lock = None;
        }
    }

    /// The workers whose last heartbeat has not lapsed, oldest heartbeat first.
    pub(super) fn active_workers(&self, task: Option<&str>) -> Vec<ActiveWorker> {
        let now = Instant::now();
        let state = self.state();
        let mut workers: Vec<ActiveWorker> = state
            .workers
            .values()
            .filter(|beat| beat.lapses > now)
            .map(|beat| &beat.worker)
            .filter(|worker| task.is_none_or(|task| worker.tasks.iter().any(|t| t == task)))
            .cloned()
            .collect();
        workers.sort_by(|a, b| (a.last_seen, &a.name).cmp(&(b.last_seen, &b.name)));
        workers
    }

    /// Every live task with its record: scheduled ones by due time (waiters for a slot,
    /// never due, last), queued and running ones in the order they entered the stream.
    /// A run cancelled while running is listed as running until its worker finishes it.
    pub(super) fn live_tasks(&self) -> LiveTasks {
        let now = Instant::now();
        let state = self.state();
        let unexpired = |record: &&Record| record.expires.is_none_or(|at| at > now);
        let entry_of = |seq: u64, key: &Arc<str>| {
            state
                .records
                .get(key)
                .map(|record| &**record)
                .filter(unexpired)
                .filter(|record| record.seq() == Some(seq))
                .map(|record| record.to_execution(key))
        };
        let mut scheduled: Vec<(&Arc<str>, &Record)> = state
            .records
            .iter()
            .map(|(key, record)| (key, &**record))
            .filter(|(_, record)| record.state == ExecutionState::Scheduled)
            .collect();
        scheduled.sort_by_key(|(key, record)| {
            let waiter = record.waiting().is_some();
            (waiter, (!waiter).then_some(record.when), *key)
        });
        LiveTasks {
            queued: state
                .stream
                .waiting_entries()
                .filter_map(|(seq, entry)| entry_of(seq, &entry.key))
                .collect(),
            scheduled: scheduled
                .into_iter()
                .map(|(key, record)| record.to_execution(key))
                .collect(),
            running: state
                .stream
                .delivered
                .iter()
                .filter_map(|(seq, delivered)| entry_of(*seq, &delivered.entry.key))
                .collect(),
        }
    }

    pub(super) fn counts(&self) -> TaskCounts {
        let state = self.state();
        TaskCounts {
            queued: state.stream.waiting_len(),
            // Parked: due later, or waiting for a concurrency slot.
            scheduled: state.parked.len(),
            running: state.stream.delivered.len(),
        }
    }

    /// One page of a listing: scheduled tasks by due time (the cursor is a rank),
    /// queued and running ones in stream order (the cursor is an entry number).
    pub(super) fn page_of(&self, listing: Listing, after: Option<&str>, limit: usize) -> Page {
        let now = Instant::now();
        let limit = limit.max(1);
        let state = self.state();
        let current = |key: &Arc<str>, seq: Option<u64>| {
            state
                .records
                .get(key)
                .map(|record| &**record)
                .filter(|record| record.expires.is_none_or(|at| at > now))
                .filter(|record| seq.is_none_or(|seq| record.seq() == Some(seq)))
                .map(|record| record.to_execution(key))
        };
        let after_seq = after.and_then(|cursor| cursor.parse::<u64>().ok());
        let (records, next) = match listing {
            Listing::Scheduled => {
                let from = usize::try_from(after_seq.unwrap_or(0)).unwrap_or(usize::MAX);
                let keys: Vec<&Arc<str>> = state
                    .queue
                    .iter()
                    .skip(from)
                    .take(limit)
                    .map(|(_, key)| key)
                    .collect();
                let more = keys.len() == limit && state.queue.len() > from + limit;
                let records = keys
                    .into_iter()
                    .filter_map(|key| current(key, None))
                    .collect();
                (records, more.then(|| (from + limit).to_string()))
            }
            Listing::Queued => {
                let entries: Vec<(u64, &Arc<str>)> = state
                    .stream
                    .waiting_entries()
                    .filter(|(seq, _)| after_seq.is_none_or(|after| *seq > after))
                    .take(limit)
                    .map(|(seq, entry)| (seq, &entry.key))
                    .collect();
                paged(&entries, limit, |(seq, key)| current(key, Some(*seq)))
            }
            Listing::Running => {
                let from = after_seq.map_or(Bound::Unbounded, Bound::Excluded);
                let entries: Vec<(u64, &Arc<str>)> = state
                    .stream
                    .delivered
                    .range((from, Bound::Unbounded))
                    .take(limit)
                    .map(|(seq, delivered)| (*seq, &delivered.entry.key))
                    .collect();
                paged(&entries, limit, |(seq, key)| current(key, Some(*seq)))
            }
        };
        Page::new(records, next)
    }

    /// The activity history from `since` on, oldest first.
    pub(super) fn activity_since(&self, since: SystemTime) -> Vec<ActivityInterval> {
        let state = self.state();
        let first =
            interval_of(since).max(interval_of(state.wall()).saturating_sub(intervals_kept()));
        state
            .activity
            .range(first..)
            .map(|(number, activity)| {
                ActivityInterval::new(
                    SystemTime::UNIX_EPOCH
                        + ACTIVITY_INTERVAL * u32::try_from(*number).unwrap_or(u32::MAX),
                    *activity,
                )
            })
            .collect()
    }
}

/// A page of stream entries: their current records, and the cursor after the last
/// entry when the page is full.
fn paged(
    entries: &[(u64, &Arc<str>)],
    limit: usize,
    current: impl Fn(&(u64, &Arc<str>)) -> Option<ExecutionRecord>,
) -> (Vec<ExecutionRecord>, Option<String>) {
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|(seq, _)| seq.to_string()))
        .flatten();
    (entries.iter().filter_map(current).collect(), next)
}

/// The number of the activity interval `at` falls in.
fn interval_of(at: SystemTime) -> u64 {
    let millis = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    u64::try_from(millis / ACTIVITY_INTERVAL.as_millis()).unwrap_or(u64::MAX)
}

/// How many intervals of activity history are kept.
fn intervals_kept() -> u64 {
    u64::try_from(ACTIVITY_KEPT.as_millis() / ACTIVITY_INTERVAL.as_millis()).unwrap_or(u64::MAX)
}
