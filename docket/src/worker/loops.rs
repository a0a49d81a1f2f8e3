//! The worker's background loops: the scheduler, lease renewal, heartbeats, and the
//! cancellation listener.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinSet;

use super::Shared;
use super::automatic::seed_automatic;
use crate::backend::{Cancelled, EntryId};

/// Due tasks moved per scheduler pass.
const PROMOTE_BATCH: usize = 1000;

/// The running background loops of one worker run.
pub(super) struct Background {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
}

impl Background {
    pub(super) async fn stop(mut self) {
        // The loops watch the stop flag; the worker sets it when its main loop ends.
        self.shared.stopping.send_replace(true);
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        // A worker that stops says so, rather than lingering in `workers()` until its
        // heartbeat expires.
        let shared = &self.shared;
        let tasks = shared.tasks.names();
        if let Err(error) = shared
            .docket
            .backend()
            .leave(shared.info.name(), &tasks)
            .await
        {
            tracing::debug!(worker = %shared.info.name(), %error, "could not deregister the worker");
        }
    }
}

pub(super) fn spawn_all(shared: Arc<Shared>) -> Background {
    let mut tasks = JoinSet::new();
    tasks.spawn(scheduler(shared.clone()));
    tasks.spawn(renewer(shared.clone()));
    tasks.spawn(heartbeat(shared.clone()));
    tasks.spawn(cancellations(shared.clone()));
    tasks.spawn(super::unserved::sweep(shared.clone()));
    if shared.settings.schedule_automatic_tasks {
        tasks.spawn(automatic(shared.clone()));
    }
    Background { shared, tasks }
}

/// Sleeps `duration`, or less if the worker is told to stop. Returns false on stop.
pub(super) async fn pause(shared: &Shared, duration: Duration) -> bool {
    let mut stopping = shared.stopping.subscribe();
    if *stopping.borrow_and_update() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => true,
        _ = stopping.wait_for(|stop| *stop) => false,
    }
}

/// Pauses between tries of a call that keeps failing: the reconnection delay, doubling
/// up to eight times it (at least a second), back to the start after a success. Redis
/// refusing writes or out of reach is then tried a few times a second at most.
pub(super) struct Backoff {
    first: Duration,
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(super) fn new(shared: &Shared) -> Self {
        let first = shared.settings.reconnection_delay;
        Self {
            first,
            next: first,
            cap: (first * 8).max(Duration::from_secs(1)),
        }
    }

    /// The pause before the next try; the one after is twice as long.
    pub(super) fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.cap);
        pause
    }

    pub(super) fn succeeded(&mut self) {
        self.next = self.first;
    }
}

/// Moves due tasks to the stream, waking at the next due time or every
/// `scheduling_resolution`, whichever is sooner.
async fn scheduler(shared: Arc<Shared>) {
    let resolution = shared.settings.scheduling_resolution;
    let limited = shared
        .tasks
        .registrations()
        .iter()
        .any(|t| t.options().concurrency.is_some());
    let mut backoff = Backoff::new(&shared);
    loop {
        // Slots whose holders died free up by expiring: wake their waiters.
        if limited
            && let Err(error) = shared
                .docket
                .backend()
                .wake_waiters(shared.settings.redelivery_timeout)
                .await
        {
            shared.mark_lost("waking tasks waiting for a slot", &error);
        }
        let wait = match shared.docket.backend().promote_due(PROMOTE_BATCH).await {
            Ok(promotion) => {
                backoff.succeeded();
                if promotion.moved >= PROMOTE_BATCH {
                    Duration::ZERO
                } else {
                    promotion
                        .next_due_in
                        .map_or(resolution, |next| next.min(resolution))
                }
            }
            Err(error) => {
                shared.mark_lost("moving due tasks", &error);
                backoff.failed()
            }
        };
        if !pause(&shared, wait).await {
            return;
        }
    }
}

/// Keeps this worker's hold on its in-flight messages, well within the redelivery timeout.
async fn renewer(shared: Arc<Shared>) {
    let every = (shared.settings.redelivery_timeout / 4).max(Duration::from_millis(10));
    while pause(&shared, every).await {
        let (ids, slots): (Vec<EntryId>, Vec<_>) = {
            let in_flight = shared
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let slots = in_flight
                .values()
                .filter_map(|run| Some((run.slot.clone()?, run.key.clone())))
                .collect();
            (in_flight.keys().copied().collect(), slots)
        };
        if ids.is_empty() {
            continue;
        }
        let lease = shared.settings.redelivery_timeout;
        if let Err(error) = shared.docket.backend().renew_slots(slots, lease).await {
            shared.mark_lost("renewing concurrency slots", &error);
        }
        match shared.docket.backend().renew(shared.info.name(), ids).await {
            Ok(lost) => {
                // A run that ended while the renewal was on its way released its
                // message itself: only runs still in flight have lost their hold.
                let still_running: Vec<EntryId> = {
                    let in_flight = shared
                        .in_flight
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    lost.into_iter()
                        .filter(|id| in_flight.contains_key(id))
                        .collect()
                };
                for id in still_running {
                    tracing::warn!(
                        worker = %shared.info.name(),
                        delivery = %id,
                        "lost the hold on a running task; another worker may run it"
                    );
                }
            }
            Err(error) => shared.mark_lost("renewing in-flight tasks", &error),
        }
    }
}

/// Tells the docket this worker is alive and which tasks it runs.
async fn heartbeat(shared: Arc<Shared>) {
    let every = shared.settings.heartbeat_interval;
    let expire_after = every * shared.settings.missed_heartbeats;
    let tasks = shared.tasks.names();
    loop {
        let activity = shared.tally.take();
        match shared
            .docket
            .backend()
            .heartbeat(shared.info.name(), &tasks, expire_after, activity)
            .await
        {
            Ok(()) => {
                shared.mark_written();
                refresh_gauges(&shared).await;
            }
            Err(error) => {
                shared.tally.restore(activity);
                shared.mark_lost("the heartbeat", &error);
            }
        }
        if !pause(&shared, every).await {
            return;
        }
    }
}

/// Cancellations that matched no run of this worker, for a while: a run claimed just
/// before its cancel and registered just after finds its own here.
#[derive(Default)]
pub(crate) struct UnmatchedCancels {
    kept: HashMap<String, Vec<(Cancelled, tokio::time::Instant)>>,
}

/// How long an unmatched cancellation is kept (a claim is registered within moments).
const UNMATCHED_KEPT: Duration = Duration::from_secs(30);

impl UnmatchedCancels {
    fn keep(&mut self, cancelled: Cancelled) {
        let now = tokio::time::Instant::now();
        if self.kept.len() >= 1024 {
            self.kept.retain(|_, entries| {
                entries.retain(|(_, at)| now.duration_since(*at) < UNMATCHED_KEPT);
                !entries.is_empty()
            });
        }
        self.kept
            .entry(cancelled.key.clone())
            .or_default()
            .push((cancelled, now));
    }

    /// Whether a recent cancellation targets the run of `key` at `generation` (and
    /// forgets it).
    pub(crate) fn take(&mut self, key: &str, generation: u64) -> bool {
        let Some(entries) = self.kept.get_mut(key) else {
            return false;
        };
        let now = tokio::time::Instant::now();
        let found = entries.iter().position(|(cancelled, at)| {
            now.duration_since(*at) < UNMATCHED_KEPT && cancelled.targets(key, generation)
        });
        if let Some(index) = found {
            entries.remove(index);
        }
        if entries.is_empty() {
            self.kept.remove(key);
        }
        found.is_some()
    }
}

/// Interrupts running tasks whose keys are cancelled.
async fn cancellations(shared: Arc<Shared>) {
    let mut backoff = Backoff::new(&shared);
    loop {
        let wait = match shared.docket.backend().cancellations().await {
            Ok(mut cancellations) => {
                backoff.succeeded();
                shared.listening.store(true, Ordering::Release);
                while let Some(cancelled) = cancellations.next().await {
                    let in_flight = shared
                        .in_flight
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let mut matched = false;
                    for run in in_flight
                        .values()
                        .filter(|run| cancelled.targets(&run.key, run.generation))
                    {
                        tracing::info!(key = %cancelled.key, "cancelling a running task");
                        run.abort.abort();
                        matched = true;
                    }
                    if !matched {
                        shared
                            .unmatched_cancels
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .keep(cancelled);
                    }
                }
                shared.listening.store(false, Ordering::Release);
                backoff.failed()
            }
            Err(error) => {
                shared.mark_lost("listening for cancellations", &error);
                backoff.failed()
            }
        };
        if !pause(&shared, wait).await {
            return;
        }
    }
}

/// Seeds automatic perpetual and cron tasks at startup, then every `automatic_interval`.
async fn automatic(shared: Arc<Shared>) {
    let tasks = shared.tasks.registrations();
    if !tasks.iter().any(|t| t.options().automatic) {
        return;
    }
    let every = shared.settings.automatic_interval;
    loop {
        match seed_automatic(&shared.docket, shared.info.name(), &tasks, every).await {
            Ok(seeded) if !seeded.is_empty() => tracing::info!(
                docket = %shared.docket.name(), worker = %shared.info.name(), tasks = ?seeded,
                "seeded automatic tasks"
            ),
            Ok(_) => {}
            Err(error) => shared.mark_lost("seeding automatic tasks", &error),
        }
        if !pause(&shared, every).await {
            return;
        }
    }
}

/// Queue and schedule depth and strikes in effect, refreshed with every heartbeat.
async fn refresh_gauges(shared: &Shared) {
    use crate::observe::metrics::{labels, set};
    let docket = shared.docket.name();
    #[allow(clippy::cast_precision_loss)]
    if let Ok(counts) = shared.docket.backend().live_counts().await {
        set(
            "docket_queue_depth",
            labels(docket, None, None),
            counts.queued as f64,
        );
        set(
            "docket_schedule_depth",
            labels(docket, None, None),
            counts.scheduled as f64,
        );
    }
    #[allow(clippy::cast_precision_loss)]
    let strikes = shared.docket.strikes().len() as f64;
    set(
        "docket_strikes_in_effect",
        labels(docket, None, None),
        strikes,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled(key: &str, generation: Option<u64>) -> Cancelled {
        Cancelled {
            key: key.to_owned(),
            generation,
        }
    }

    #[test]
    fn unmatched_cancellations_find_their_run_once_and_only_while_fresh() {
        let mut kept = UnmatchedCancels::default();
        kept.keep(cancelled("a", Some(3)));
        assert!(!kept.take("a", 4), "another generation of the key");
        assert!(!kept.take("b", 3), "another key");
        assert!(kept.take("a", 3));
        assert!(!kept.take("a", 3), "taken once");

        // A publisher that did not say which generation cancels any run of the key.
        kept.keep(cancelled("c", None));
        assert!(kept.take("c", 9));

        let long_ago = tokio::time::Instant::now()
            .checked_sub(UNMATCHED_KEPT)
            .expect("an instant 30 s ago");
        kept.kept
            .insert("d".to_owned(), vec![(cancelled("d", Some(1)), long_ago)]);
        assert!(!kept.take("d", 1), "forgotten after {UNMATCHED_KEPT:?}");
    }
}
