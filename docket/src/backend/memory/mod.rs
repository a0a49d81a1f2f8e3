//! The `memory://` backend: the same semantics as Redis, in-process, with no server.
//!
//! Every handle opened on the same `memory://NAME` in a process shares one store, so a
//! producer and a worker in one program (or one test) see the same docket.
//!
//! Laid out as the Redis backend is: [`store`] holds the data (Redis's keys), and each
//! operation lives in the file named as its Redis twin — [`lifecycle`] (schedule, finish,
//! promote, cancel, clear, dead letters, leases), [`consumer`] (claim, reclaim, renew),
//! [`observe`] (records, results, progress, events, heartbeats, snapshots),
//! [`strikes`], [`admission`] and [`unserved`] (calls waiting for a worker that serves
//! their task). Every state transition is one critical section over
//! the store, as it is one Lua script on Redis.

mod admission;
mod consumer;
mod lifecycle;
mod observe;
mod store;
mod strikes;
mod unserved;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::sync::{Notify, broadcast};

use self::store::{Record, State};
use super::subscriptions::Subscriptions;
use super::{
    ActiveWorker, Activity, ActivityInterval, AdmissionRule, Backend, BackendConfig, BoxFuture,
    Cancelled, Consumer, DeadLetter, Delivery, EntryId, EventStream, Finish, FinishOutcome,
    Listing, LiveTasks, NewTask, Page, ProgressUpdate, Promotion, ScheduleOutcome, Slot,
    StrikeReader, TaskCounts, Unserved,
};
use crate::error::Result;
use crate::model::{Event, ExecutionRecord, Instruction, ProgressState, TaskError};

/// One named in-process store.
struct Store {
    state: Mutex<State>,
    /// Woken when messages enter the stream.
    ready: Notify,
    /// Who follows which key's events.
    subscriptions: Arc<Subscriptions>,
    cancels: broadcast::Sender<Cancelled>,
    /// Woken when a strike instruction is appended.
    strikes_changed: Notify,
}

/// The stores of this process, by name; they live as long as the process.
static STORES: LazyLock<Mutex<HashMap<String, Arc<Store>>>> = LazyLock::new(Mutex::default);

#[derive(Clone)]
pub(crate) struct MemoryBackend {
    store: Arc<Store>,
    ttl: Duration,
    max_deliveries: u32,
}

impl MemoryBackend {
    pub(crate) fn open(name: &str, config: &BackendConfig) -> Self {
        let mut stores = STORES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One store per URL *and* docket name, as Redis keeps dockets apart by prefix.
        let id = format!("{name}\u{0}{}", config.name);
        let store = stores
            .entry(id)
            .or_insert_with(|| {
                Arc::new(Store {
                    state: Mutex::default(),
                    ready: Notify::new(),
                    subscriptions: Subscriptions::local(),
                    cancels: broadcast::channel(1024).0,
                    strikes_changed: Notify::new(),
                })
            })
            .clone();
        Self {
            store,
            ttl: config.execution_ttl,
            max_deliveries: config.max_deliveries.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.store
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes the event `event` builds to the followers of `key`, if it has any.
    fn publish(&self, key: &str, event: impl FnOnce() -> Event) {
        self.store.subscriptions.publish(key, event);
    }

    /// Publishes the state a live record moved to: the worker while it runs, and no
    /// error (a retry's record keeps its last one, but the retry has not failed).
    fn publish_state(&self, key: &str, record: &Record) {
        self.publish(key, || Event::State {
            state: record.state,
            generation: record.generation,
            worker: record.worker.as_deref().map(str::to_owned),
            error: None,
        });
    }
}

/// An answer the store already has: the memory backend never waits on anything but its
/// lock.
fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, Result<T>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Backend for MemoryBackend {
    fn schedule<'a>(&'a self, tasks: &'a [NewTask]) -> BoxFuture<'a, Result<Vec<ScheduleOutcome>>> {
        ready(self.schedule_all(tasks))
    }

    fn consumer(&self, worker: &str) -> BoxFuture<'_, Result<Box<dyn Consumer>>> {
        ready(self.open_consumer(worker))
    }

    fn finish(&self, worker: &str, runs: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishOutcome>>> {
        ready(self.finish_all(worker, runs))
    }

    fn promote_due(&self, limit: usize) -> BoxFuture<'_, Result<Promotion>> {
        ready(self.promote(limit))
    }

    fn renew(&self, worker: &str, ids: Vec<EntryId>) -> BoxFuture<'_, Result<Vec<EntryId>>> {
        ready(self.renew_held(worker, ids))
    }

    fn reclaim(
        &self,
        worker: &str,
        idle: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        ready(self.reclaim_abandoned(worker, idle, limit))
    }

    fn cancel(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        ready(self.cancel_key(key))
    }

    fn record(&self, key: &str) -> BoxFuture<'_, Result<Option<ExecutionRecord>>> {
        ready(self.record_of(key))
    }

    fn result(&self, key: &str, generation: u64) -> BoxFuture<'_, Result<Option<String>>> {
        ready(self.result_of(key, generation))
    }

    fn progress(&self, key: &str) -> BoxFuture<'_, Result<Option<ProgressState>>> {
        ready(self.progress_of(key))
    }

    fn report_progress(&self, key: &str, update: ProgressUpdate) -> BoxFuture<'_, Result<()>> {
        self.apply_progress(key, update);
        ready(())
    }

    fn subscribe(&self, key: &str) -> BoxFuture<'_, Result<EventStream>> {
        ready(self.events_of(key))
    }

    fn cancellations(
        &self,
    ) -> BoxFuture<'_, Result<Pin<Box<dyn Stream<Item = Cancelled> + Send>>>> {
        ready(self.cancel_requests())
    }

    fn heartbeat(
        &self,
        worker: &str,
        tasks: &[&'static str],
        expire_after: Duration,
        activity: Activity,
    ) -> BoxFuture<'_, Result<()>> {
        self.beat(worker, tasks, expire_after, activity);
        ready(())
    }

    fn leave(&self, worker: &str, _tasks: &[&'static str]) -> BoxFuture<'_, Result<()>> {
        self.forget_worker(worker);
        ready(())
    }

    fn unserved(&self) -> BoxFuture<'_, Result<Vec<Unserved>>> {
        ready(self.unserved_tasks())
    }

    fn abandon_unserved(
        &self,
        task: &str,
        since: SystemTime,
        error: TaskError,
    ) -> BoxFuture<'_, Result<usize>> {
        ready(self.abandon(task, since, &error))
    }

    fn workers(&self, task: Option<&str>) -> BoxFuture<'_, Result<Vec<ActiveWorker>>> {
        ready(self.active_workers(task))
    }

    fn live(&self) -> BoxFuture<'_, Result<LiveTasks>> {
        ready(self.live_tasks())
    }

    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        ready(self.letters())
    }

    fn forget_dead_letter(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        ready(self.forget_letter(key))
    }

    fn page(
        &self,
        listing: Listing,
        after: Option<&str>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page>> {
        ready(self.page_of(listing, after, limit))
    }

    fn activity(&self, since: SystemTime) -> BoxFuture<'_, Result<Vec<ActivityInterval>>> {
        ready(self.activity_since(since))
    }

    fn live_counts(&self) -> BoxFuture<'_, Result<TaskCounts>> {
        ready(self.counts())
    }

    fn clear(&self) -> BoxFuture<'_, Result<usize>> {
        ready(self.clear_waiting())
    }

    fn append_strike(
        &self,
        instruction: Instruction,
        compact_above: usize,
    ) -> BoxFuture<'_, Result<EntryId>> {
        ready(self.append(instruction, compact_above))
    }

    fn strike_reader(&self) -> BoxFuture<'_, Result<Box<dyn StrikeReader>>> {
        ready(self.reader())
    }

    fn admit(&self, rule: AdmissionRule) -> BoxFuture<'_, Result<Option<Duration>>> {
        ready(self.decide(rule))
    }

    fn renew_slots(&self, held: Vec<(Slot, String)>, lease: Duration) -> BoxFuture<'_, Result<()>> {
        self.extend_slots(held, lease);
        ready(())
    }

    fn wake_waiters(&self, lease: Duration) -> BoxFuture<'_, Result<usize>> {
        ready(self.wake_all(lease))
    }

    fn try_lock(&self, name: &str, holder: &str, ttl: Duration) -> BoxFuture<'_, Result<bool>> {
        ready(self.lock(name, holder, ttl))
    }

    fn virtual_time(&self, advance: Duration, auto_advance: Option<bool>) -> Result<()> {
        self.move_clock(advance, auto_advance);
        Ok(())
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime>> {
        ready(self.wall())
    }
}
