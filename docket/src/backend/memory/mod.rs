//! The `memory://` backend: the same semantics as Redis, in-process, with no server.
//!
//! Every handle opened on the same `memory://NAME` in a process shares one store, so a
//! producer and a worker in one program (or one test) see the same docket.

mod admission;
mod store;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use futures::{Stream, StreamExt};
use tokio::sync::{Notify, broadcast};
use tokio_stream::wrappers::BroadcastStream;

use self::store::{At, Delivered, Entry, Name, Placed, Record, State};
use super::{
    AdmissionCheck, Backend, BackendConfig, BoxFuture, Cancelled, Claimed, Consumer, DeadLetter,
    Delivery, EventStream, Finish, FinishOutcome, LiveCounts, LiveTasks, NewTask, NextDue, Outcome,
    ProgressUpdate, Promotion, Reschedule, ScheduleOutcome, Slot, StrikeEntry, StrikeReader,
    WorkerEntry, dead_letter_error,
};
use crate::error::{Result, TaskError};
use crate::execution::{Disposition, Event, ExecutionRecord, ExecutionState, ProgressState};
use crate::strikes::{Instruction, StrikeSet};
use crate::task::Due;

/// One named in-process store.
/// One named in-process store.
struct Store {
    state: Mutex<State>,
    /// Woken when messages enter the stream.
    ready: Notify,
    events: broadcast::Sender<(String, Event)>,
    cancels: broadcast::Sender<Cancelled>,
    /// Woken when a strike instruction is appended.
    strikes_changed: Notify,
}

/// The stores of this process, by name; they live as long as the process.
static STORES: LazyLock<Mutex<HashMap<String, Arc<Store>>>> = LazyLock::new(Mutex::default);

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
                    events: broadcast::channel(4096).0,
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

    /// Publishes the event `event` builds, unless nobody is listening.
    fn publish(&self, key: &str, event: impl FnOnce() -> Event) {
        if self.store.events.receiver_count() == 0 {
            return;
        }
        // A subscriber that left since is fine.
        let _ = self.store.events.send((key.to_owned(), event()));
    }

    fn publish_state(&self, key: &str, record: &Record) {
        self.publish(key, || Event::State {
            state: record.state,
            generation: record.generation,
            worker: record.worker.as_deref().map(str::to_owned),
            error: record.error().cloned(),
        });
    }

    fn schedule_one(&self, state: &mut State, task: NewTask, now: Instant) -> ScheduleOutcome {
        let wall = state.wall();
        let mut generation = 1;
        let mut disposition = Disposition::Scheduled;
        let existing = state
            .record(&task.key, now)
            .map(|r| (r.state, r.generation, r.when, r.seq()));
        let key = state.key(&task.key);
        if let Some((existing_state, existing_generation, existing_when, seq)) = existing {
            let live = !existing_state.is_terminal();
            if live && !task.replace {
                return ScheduleOutcome {
                    disposition: Disposition::AlreadyScheduled,
                    generation: existing_generation,
                    when: existing_when,
                };
            }
            generation = existing_generation + 1;
            if live {
                disposition = Disposition::Superseded;
                match existing_state {
                    ExecutionState::Queued => {
                        if let Some(seq) = seq {
                            state.stream.remove(seq);
                        }
                    }
                    ExecutionState::Scheduled => {
                        state.queue.remove(&(existing_when, key.clone()));
                        state.parked.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        let when = match task.due {
            Due::Now => wall,
            Due::After(delay) => wall + delay,
            Due::At(at) => at,
        };
        let message = Placed {
            function: state.names.get(&task.function),
            args: state.names.args(task.args),
            when,
            attempt: task.attempt,
            generation,
            traceparent: task.traceparent,
        };
        let (record_state, stream_seq) = state.place(&key, &message, wall);
        let record = Record::new(message, record_state, stream_seq);
        self.publish_state(&key, &record);
        state.forget_progress(&key);
        state.records.insert(key, Box::new(record));
        ScheduleOutcome {
            disposition,
            generation,
            when,
        }
    }

    /// Marks a stream entry, just taken out of the stream, RUNNING for `worker` and
    /// hands it over as delivered; or drops it when superseded.
    fn claim_one(
        &self,
        state: &mut State,
        (seq, entry): (u64, Entry),
        worker: &Name,
        redelivered: bool,
        at: At,
        claimed: &mut Claimed,
    ) {
        let expected = if redelivered {
            ExecutionState::Running
        } else {
            ExecutionState::Queued
        };
        // The entry's number fences generations: it is the record's only while the
        // record is at the generation that placed it.
        let current = state
            .live(&entry.key)
            .filter(|r| r.seq() == Some(seq) && r.state == expected);
        let Some(record) = current else {
            claimed.superseded.push((
                entry.key.as_ref().to_owned(),
                entry.function.as_str().to_owned(),
            ));
            return;
        };
        record.deliveries += 1;
        if record.deliveries > self.max_deliveries {
            self.dead_letter(state, &entry.key, at);
            return;
        }
        record.state = ExecutionState::Running;
        record.worker = Some(worker.clone());
        record.started_at = Some(at.wall);
        let message = record.to_message(&entry.key);
        let record = &*record;
        self.publish_state(&entry.key, record);
        state.stream.delivered.insert(
            seq,
            Delivered {
                entry,
                worker: worker.clone(),
                renewed: at.now,
            },
        );
        claimed.deliveries.push(Delivery {
            id: seq.to_string(),
            message,
            redelivered,
        });
    }

    /// Fails a run whose workers keep dying rather than hand it to another.
    fn dead_letter(&self, state: &mut State, key: &str, at: At) {
        let Some(record) = state.records.get(key) else {
            return;
        };
        let generation = record.generation;
        let function = record.function.clone();
        let error = dead_letter_error(self.max_deliveries);
        state.dead_letters.insert(
            key.to_owned(),
            DeadLetter {
                key: key.to_owned(),
                function: function.as_str().to_owned(),
                args: record.args.as_ref().to_owned(),
                error: error.message().to_owned(),
                dead_at: chrono::DateTime::<chrono::Utc>::from(at.wall)
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
        );
        state.end(
            key,
            ExecutionState::Failed,
            Some(error.clone()),
            self.ttl,
            at,
        );
        tracing::error!(key = %key, task = %function.as_str(), "dead-lettered after {} deliveries: recorded FAILED", self.max_deliveries);
        self.publish(key, || Event::State {
            state: ExecutionState::Failed,
            generation,
            worker: None,
            error: Some(error),
        });
    }

    fn finish_one(&self, state: &mut State, worker: &str, run: Finish, at: At) -> FinishOutcome {
        let now = at.now;
        let Ok(seq) = run.delivery_id.parse::<u64>() else {
            return FinishOutcome::Fenced;
        };
        let owned = state
            .stream
            .delivered
            .get(&seq)
            .is_some_and(|delivered| &*delivered.worker == worker);
        if !owned {
            return FinishOutcome::Fenced;
        }
        state.stream.remove(seq);
        let current = state.live(&run.key).is_some_and(|r| {
            // The stream entry fences too: with `execution_ttl = 0` generations restart
            // at 1 once a record is deleted, so only the entry tells two runs apart.
            r.generation == run.generation
                && r.seq() == Some(seq)
                && r.state == ExecutionState::Running
                && r.worker.as_deref() == Some(worker)
        });
        if !current {
            return FinishOutcome::Superseded;
        }
        let (end_state, error, result) = match run.outcome {
            Outcome::Completed { result } => (ExecutionState::Completed, None, result),
            Outcome::Failed { error } => (ExecutionState::Failed, Some(error), None),
            Outcome::Cancelled | Outcome::Deferred => (ExecutionState::Cancelled, None, None),
            Outcome::Refused { error } => (ExecutionState::Cancelled, Some(error), None),
        };
        if !self.ttl.is_zero()
            && let Some(result) = result
        {
            let key = state.key(&run.key);
            state.results.insert(
                (key, run.generation),
                (result.into_boxed_str(), now + self.ttl),
            );
            if let Some(record) = state.records.get_mut(run.key.as_str()) {
                record.has_result = true;
            }
        }
        if run.release
            && let Some(slot) = &run.slot
        {
            Self::release_slot(state, slot, &run.key);
            self.wake_scope(state, slot, now);
        }
        if let Some(next) = run.next {
            self.reschedule(state, &run.key, next, error, run.slot.as_ref(), now);
            return FinishOutcome::Recorded;
        }
        let event = (self.store.events.receiver_count() > 0).then(|| error.clone());
        state.end(&run.key, end_state, error, self.ttl, at);
        if let Some(error) = event {
            self.publish(&run.key, || Event::State {
                state: end_state,
                generation: run.generation,
                worker: Some(worker.to_owned()),
                error,
            });
        }
        FinishOutcome::Recorded
    }

    /// Moves a finished run's key to its next generation, in the same critical section
    /// that recorded its end (finish.lua's `reschedule`).
    fn reschedule(
        &self,
        state: &mut State,
        key: &str,
        next: Reschedule,
        error: Option<TaskError>,
        slot: Option<&Slot>,
        now: Instant,
    ) {
        let wall = state.wall();
        let waits = next.due == NextDue::Wait
            && slot.is_some_and(|slot| !Self::has_free_slot(state, slot, now));
        let Some((key, record)) = state.records.get_key_value(key) else {
            return;
        };
        let key = key.clone();
        let when = match next.due {
            NextDue::Wait if waits => record.when,
            NextDue::Wait => wall,
            NextDue::After(delay) => wall + delay,
            NextDue::At(at) => at,
            NextDue::AfterStart(every) => record
                .started_at
                .map_or(wall, |started| (started + every).max(wall)),
        };
        let message = Placed {
            function: record.function.clone(),
            args: match next.args {
                Some(args) => state.names.args(args),
                None => record.args.clone(),
            },
            when,
            attempt: next.attempt,
            generation: record.generation + 1,
            traceparent: next.traceparent,
        };
        let waiting = slot.filter(|_| waits);
        let (new_state, stream_seq) = match waiting {
            Some(slot) => {
                state.parked.insert(key.clone());
                state
                    .waiting
                    .entry(slot.scope.clone())
                    .or_default()
                    .push_back(key.clone());
                state.waiting_max.insert(slot.scope.clone(), slot.max);
                (ExecutionState::Scheduled, None)
            }
            None => state.place(&key, &message, wall),
        };
        state.forget_progress(&key);
        let Some(record) = state.records.get_mut(&key) else {
            return;
        };
        **record = Record::new(message, new_state, stream_seq);
        record.set_error(error);
        record.set_waiting(waiting.map(|slot| slot.scope.clone()));
        self.publish_state(&key, record);
    }

    fn cancel_live(&self, state: &mut State, key: &str, now: Instant) -> bool {
        let Some(record) = state.record(key, now) else {
            return false;
        };
        let generation = record.generation;
        let seq = record.seq();
        match record.state {
            ExecutionState::Scheduled => {
                let when = record.when;
                let key = state.key(key);
                state.queue.remove(&(when, key.clone()));
                state.parked.remove(&key);
            }
            ExecutionState::Queued => {
                if let Some(seq) = seq {
                    state.stream.remove(seq);
                }
            }
            ExecutionState::Running => {
                let _ = self.store.cancels.send(Cancelled {
                    key: key.to_owned(),
                    generation: Some(generation),
                });
            }
            _ => return false,
        }
        let at = state.at(now);
        state.end(key, ExecutionState::Cancelled, None, self.ttl, at);
        self.publish(key, || Event::State {
            state: ExecutionState::Cancelled,
            generation,
            worker: None,
            error: None,
        });
        true
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, Result<T>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl Backend for MemoryBackend {
    fn schedule<'a>(&'a self, tasks: &'a [NewTask]) -> BoxFuture<'a, Result<Vec<ScheduleOutcome>>> {
        let now = Instant::now();
        let outcomes: Vec<_> = {
            let mut state = self.state();
            tasks
                .iter()
                .map(|task| self.schedule_one(&mut state, task.clone(), now))
                .collect()
        };
        self.store.ready.notify_waiters();
        ready(outcomes)
    }

    fn consumer(&self, worker: &str) -> BoxFuture<'_, Result<Box<dyn Consumer>>> {
        let worker = self.state().names.get(worker);
        let consumer: Box<dyn Consumer> = Box::new(MemoryConsumer {
            backend: MemoryBackend {
                store: self.store.clone(),
                ttl: self.ttl,
                max_deliveries: self.max_deliveries,
            },
            worker,
        });
        ready(consumer)
    }

    fn finish(&self, worker: &str, runs: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishOutcome>>> {
        let mut state = self.state();
        let at = state.at(Instant::now());
        let outcomes = runs
            .into_iter()
            .map(|run| self.finish_one(&mut state, worker, run, at))
            .collect();
        drop(state);
        ready(outcomes)
    }

    fn promote_due(&self, limit: usize) -> BoxFuture<'_, Result<Promotion>> {
        let now = Instant::now();
        let mut state = self.state();
        state.purge(now);
        // Virtual time: a docket with nothing queued or running jumps to its next task.
        if state.auto_advance
            && state.stream.is_empty()
            && let Some((first, _)) = state.queue.first()
            && let Ok(ahead) = first.duration_since(state.wall())
        {
            state.clock_offset += ahead;
        }
        let wall = state.wall();
        let mut moved = 0;
        while moved < limit {
            let Some((when, key)) = state.queue.first().cloned() else {
                break;
            };
            if when > wall {
                break;
            }
            state.queue.pop_first();
            if !state.parked.remove(&key) {
                continue;
            }
            let Some(function) = state.record(&key, now).map(|r| r.function.clone()) else {
                continue;
            };
            let seq = state.stream.push(Entry {
                key: key.clone(),
                function,
            });
            if let Some(record) = state.records.get_mut(&key) {
                record.state = ExecutionState::Queued;
                record.set_seq(Some(seq));
                self.publish_state(&key, record);
            }
            moved += 1;
        }
        let next_due_in = state
            .queue
            .first()
            .map(|(when, _)| when.duration_since(wall).unwrap_or_default());
        drop(state);
        if moved > 0 {
            self.store.ready.notify_waiters();
        }
        ready(Promotion { moved, next_due_in })
    }

    fn renew(&self, worker: &str, ids: Vec<String>) -> BoxFuture<'_, Result<Vec<String>>> {
        let now = Instant::now();
        let mut state = self.state();
        let lost = ids
            .into_iter()
            .filter(|id| {
                let owner = id
                    .parse::<u64>()
                    .ok()
                    .and_then(|seq| state.stream.delivered.get_mut(&seq))
                    .filter(|delivered| &*delivered.worker == worker);
                match owner {
                    Some(delivered) => {
                        delivered.renewed = now;
                        false
                    }
                    None => true,
                }
            })
            .collect();
        drop(state);
        ready(lost)
    }

    fn reclaim(
        &self,
        worker: &str,
        idle: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        let now = Instant::now();
        let mut state = self.state();
        let lock_free = state
            .sweep_lock
            .as_ref()
            .is_none_or(|(holder, until)| holder == worker || *until <= now);
        if !lock_free {
            return ready(Vec::new());
        }
        // As reclaim.lua: a lease of half the idle time, renewed at every sweep.
        state.sweep_lock = Some((
            worker.to_owned(),
            now + (idle / 2).max(Duration::from_millis(50)),
        ));
        let abandoned: Vec<u64> = state
            .stream
            .delivered
            .iter()
            .filter(|(_, delivered)| now.duration_since(delivered.renewed) >= idle)
            .map(|(seq, _)| *seq)
            .take(limit)
            .collect();
        let mut claimed = Claimed::default();
        if abandoned.is_empty() {
            return ready(claimed.deliveries);
        }
        let worker = state.names.get(worker);
        let at = state.at(now);
        for seq in abandoned {
            if let Some(delivered) = state.stream.delivered.remove(&seq) {
                let entry = (seq, delivered.entry);
                self.claim_one(&mut state, entry, &worker, true, at, &mut claimed);
            }
        }
        drop(state);
        ready(claimed.deliveries)
    }

    fn cancel(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let now = Instant::now();
        let mut state = self.state();
        let cancelled = self.cancel_live(&mut state, key, now);
        drop(state);
        ready(cancelled)
    }

    fn record(&self, key: &str) -> BoxFuture<'_, Result<Option<ExecutionRecord>>> {
        let now = Instant::now();
        let record = self.state().record(key, now).map(|r| r.to_execution(key));
        ready(record)
    }

    fn result(&self, key: &str, generation: u64) -> BoxFuture<'_, Result<Option<String>>> {
        let now = Instant::now();
        let state = self.state();
        let result = state
            .results
            .get(&(Arc::from(key), generation))
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.as_ref().to_owned());
        drop(state);
        ready(result)
    }

    fn progress(&self, key: &str) -> BoxFuture<'_, Result<Option<ProgressState>>> {
        let progress = self.state().progress.get(key).cloned();
        ready(progress)
    }

    fn report_progress(&self, key: &str, update: ProgressUpdate) -> BoxFuture<'_, Result<()>> {
        let mut state = self.state();
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
        ready(())
    }

    fn subscribe(&self, key: &str) -> BoxFuture<'_, Result<EventStream>> {
        let key = key.to_owned();
        let events = BroadcastStream::new(self.store.events.subscribe()).filter_map(move |item| {
            let wanted = match item {
                Ok((event_key, event)) if event_key == key => Some(event),
                // Lagging only happens to a subscriber that stopped reading.
                _ => None,
            };
            std::future::ready(wanted)
        });
        let stream: EventStream = Box::pin(events);
        ready(stream)
    }

    fn cancellations(
        &self,
    ) -> BoxFuture<'_, Result<Pin<Box<dyn Stream<Item = Cancelled> + Send>>>> {
        let keys = BroadcastStream::new(self.store.cancels.subscribe())
            .filter_map(|item| std::future::ready(item.ok()));
        let stream: Pin<Box<dyn Stream<Item = Cancelled> + Send>> = Box::pin(keys);
        ready(stream)
    }

    fn heartbeat(
        &self,
        worker: &str,
        tasks: &[&'static str],
        expire_after: Duration,
    ) -> BoxFuture<'_, Result<()>> {
        let wall = SystemTime::now();
        let mut state = self.state();
        state.workers.insert(
            worker.to_owned(),
            WorkerEntry {
                name: worker.to_owned(),
                last_seen: wall,
                tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
            },
        );
        state.workers.retain(|_, entry| {
            wall.duration_since(entry.last_seen).unwrap_or_default() < expire_after
        });
        drop(state);
        ready(())
    }

    fn append_strike(
        &self,
        instruction: Instruction,
        compact_above: usize,
    ) -> BoxFuture<'_, Result<String>> {
        let mut state = self.state();
        let push = |state: &mut State, instruction: Instruction| {
            state.next_strike += 1;
            let seq = state.next_strike;
            state.strike_log.push((seq, instruction));
            seq
        };
        let id = push(&mut state, instruction);
        let length = state.strike_log.len();
        if length > compact_above {
            // strike.lua's compaction: fold, and rewrite when that halves the log.
            let mut set = StrikeSet::default();
            state
                .strike_log
                .iter()
                .for_each(|(_, i)| set.apply(i.clone()));
            let live = set.all();
            if live.len() + 1 < length / 2 {
                state.strike_log.clear();
                push(&mut state, Instruction::Reset);
                for strike in live {
                    push(&mut state, Instruction::Strike(strike));
                }
            }
        }
        drop(state);
        self.store.strikes_changed.notify_waiters();
        ready(id.to_string())
    }

    fn strike_reader(&self) -> BoxFuture<'_, Result<Box<dyn StrikeReader>>> {
        let reader = MemoryStrikeReader {
            store: self.store.clone(),
        };
        ready(Box::new(reader) as Box<dyn StrikeReader>)
    }

    fn admission(&self, check: AdmissionCheck) -> BoxFuture<'_, Result<Option<Duration>>> {
        let answer = self.check(check);
        ready(answer)
    }

    fn renew_slots(&self, held: Vec<(Slot, String)>, lease: Duration) -> BoxFuture<'_, Result<()>> {
        let until = Instant::now() + lease;
        let mut state = self.state();
        for (slot, key) in held {
            if let Some(expiry) = state
                .slots
                .get_mut(&slot.scope)
                .and_then(|s| s.get_mut(&key))
            {
                *expiry = until;
            }
        }
        drop(state);
        ready(())
    }

    fn wake_waiters(&self, lease: Duration) -> BoxFuture<'_, Result<usize>> {
        let _ = lease;
        let woke = self.wake_all();
        ready(woke)
    }

    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        let letters = self.state().dead_letters.values().cloned().collect();
        ready(letters)
    }

    fn forget_dead_letter(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let removed = self.state().dead_letters.remove(key).is_some();
        ready(removed)
    }

    fn try_lock(&self, name: &str, holder: &str, ttl: Duration) -> BoxFuture<'_, Result<bool>> {
        let now = Instant::now();
        let mut state = self.state();
        let held = state
            .locks
            .get(name)
            .is_some_and(|(owner, until)| owner != holder && *until > now);
        if !held {
            state
                .locks
                .insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        drop(state);
        ready(!held)
    }

    fn virtual_time(&self, advance: Duration, auto_advance: Option<bool>) -> Result<()> {
        let mut state = self.state();
        state.clock_offset += advance;
        if let Some(on) = auto_advance {
            state.auto_advance = on;
        }
        drop(state);
        // Tasks that just fell due are promoted by the next scheduler pass.
        Ok(())
    }

    fn leave(&self, worker: &str, _tasks: &[&'static str]) -> BoxFuture<'_, Result<()>> {
        let mut state = self.state();
        state.workers.remove(worker);
        if state
            .sweep_lock
            .as_ref()
            .is_some_and(|(holder, _)| holder == worker)
        {
            state.sweep_lock = None;
        }
        drop(state);
        ready(())
    }

    fn workers(&self, task: Option<&str>) -> BoxFuture<'_, Result<Vec<WorkerEntry>>> {
        let state = self.state();
        let workers = state
            .workers
            .values()
            .filter(|entry| task.is_none_or(|task| entry.tasks.iter().any(|t| t == task)))
            .cloned()
            .collect();
        drop(state);
        ready(workers)
    }

    fn live(&self) -> BoxFuture<'_, Result<LiveTasks>> {
        let now = Instant::now();
        let mut state = self.state();
        let keys: Vec<Arc<str>> = state.records.keys().cloned().collect();
        let mut live = LiveTasks::default();
        for key in keys {
            let Some(record) = state.record(&key, now).map(|r| r.to_execution(&key)) else {
                continue;
            };
            match record.state {
                ExecutionState::Queued => live.queued.push(record),
                ExecutionState::Scheduled => live.scheduled.push(record),
                ExecutionState::Running => live.running.push(record),
                _ => {}
            }
        }
        drop(state);
        ready(live)
    }

    fn live_counts(&self) -> BoxFuture<'_, Result<LiveCounts>> {
        let state = self.state();
        let counts = LiveCounts {
            queued: state.stream.waiting_len(),
            // Parked: due later, or waiting for a concurrency slot.
            scheduled: state.parked.len(),
            running: state.stream.delivered.len(),
        };
        drop(state);
        ready(counts)
    }

    fn clear(&self) -> BoxFuture<'_, Result<usize>> {
        let now = Instant::now();
        let mut state = self.state();
        let keys: Vec<Arc<str>> = state
            .records
            .iter()
            .filter(|(_, r)| matches!(r.state, ExecutionState::Queued | ExecutionState::Scheduled))
            .map(|(key, _)| key.clone())
            .collect();
        let cleared = keys
            .iter()
            .filter(|key| self.cancel_live(&mut state, key, now))
            .count();
        drop(state);
        ready(cleared)
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime>> {
        ready(self.state().wall())
    }
}

struct MemoryStrikeReader {
    store: Arc<Store>,
}

impl MemoryStrikeReader {
    fn after(&self, after: u64, count: usize) -> Vec<StrikeEntry> {
        let state = self
            .store
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .strike_log
            .iter()
            .filter(|(seq, _)| *seq > after)
            .take(count)
            .map(|(seq, instruction)| (seq.to_string(), Ok(instruction.clone())))
            .collect()
    }
}

impl StrikeReader for MemoryStrikeReader {
    fn read<'a>(
        &'a mut self,
        after: Option<&'a str>,
        block: Option<Duration>,
        count: usize,
    ) -> BoxFuture<'a, Result<Vec<StrikeEntry>>> {
        let after = after.and_then(|id| id.parse().ok()).unwrap_or(0);
        Box::pin(async move {
            let changed = self.store.strikes_changed.notified();
            let entries = self.after(after, count);
            if !entries.is_empty() {
                return Ok(entries);
            }
            let Some(block) = block else {
                return Ok(entries);
            };
            let _ = tokio::time::timeout(block, changed).await;
            Ok(self.after(after, count))
        })
    }
}

struct MemoryConsumer {
    backend: MemoryBackend,
    /// The worker's name, as the store interned it.
    worker: Name,
}

impl MemoryConsumer {
    fn take(&self, max: usize) -> Claimed {
        let mut state = self.backend.state();
        let at = state.at(Instant::now());
        let mut claimed = Claimed::default();
        claimed
            .deliveries
            .reserve(max.min(state.stream.waiting_len()));
        for _ in 0..max {
            let Some(entry) = state.stream.pop_waiting() else {
                break;
            };
            self.backend
                .claim_one(&mut state, entry, &self.worker, false, at, &mut claimed);
        }
        claimed
    }
}

impl Consumer for MemoryConsumer {
    fn claim(&mut self, max: usize, block: Duration) -> BoxFuture<'_, Result<Claimed>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + block;
            loop {
                // Register interest before looking, so a push in between is not missed.
                let notified = self.backend.store.ready.notified();
                let claimed = self.take(max);
                if !claimed.deliveries.is_empty()
                    || !claimed.superseded.is_empty()
                    || tokio::time::Instant::now() >= deadline
                {
                    return Ok(claimed);
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return Ok(self.take(max));
                }
            }
        })
    }
}
