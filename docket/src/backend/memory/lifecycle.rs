//! A key's life in memory: schedule, finish (with what follows the run), promote due
//! tasks, cancel, clear; the dead letters; named leases.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::MemoryBackend;
use super::store::{At, Entry, Record, State};
use crate::backend::{
    Cancelled, DeadLetter, Finish, FinishOutcome, NewTask, Outcome, Output, Promotion, Reschedule,
    SLOT_LEASE, ScheduleOutcome, Wait,
};
use crate::model::{Disposition, Event, ExecutionState, TaskError, When};

impl MemoryBackend {
    /// Schedules each call in turn, in one critical section.
    pub(super) fn schedule_all(&self, tasks: &[NewTask]) -> Vec<ScheduleOutcome> {
        let outcomes = {
            let mut state = self.state();
            let at = state.at(Instant::now());
            tasks
                .iter()
                .map(|task| self.schedule_one(&mut state, task, at))
                .collect()
        };
        self.store.ready.notify_waiters();
        outcomes
    }

    fn schedule_one(&self, state: &mut State, task: &NewTask, at: At) -> ScheduleOutcome {
        let At { now, wall } = at;
        let mut generation = 1;
        let mut disposition = Disposition::Scheduled;
        let existing = state
            .record(&task.message.key, now)
            .map(|r| (r.state, r.generation, r.when, r.seq()));
        let key = state.key(&task.message.key);
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
            When::Now | When::AfterStart(_) => wall,
            When::After(delay) => wall + delay,
            When::At(at) => at,
        };
        let function = state.names.get(&task.message.function);
        let args = state.names.args(&task.message.args);
        let (record_state, stream_seq) = state.place(&key, &function, when, wall);
        let mut message = task.message.clone();
        message.when = when;
        message.generation = generation;
        let record = Record::new(&message, function, args, record_state, stream_seq, self.ttl);
        self.publish_state(&key, &record);
        state.forget_progress(&key);
        state.records.insert(key, Box::new(record));
        ScheduleOutcome {
            disposition,
            generation,
            when,
        }
    }

    /// Records each finished run in turn, in one critical section.
    pub(super) fn finish_all(&self, worker: &str, runs: Vec<Finish>) -> Vec<FinishOutcome> {
        let mut state = self.state();
        let at = state.at(Instant::now());
        runs.into_iter()
            .map(|run| self.finish_one(&mut state, worker, run, at))
            .collect()
    }

    fn finish_one(&self, state: &mut State, worker: &str, run: Finish, at: At) -> FinishOutcome {
        let now = at.now;
        let seq = run.delivery.seq();
        let owned = state
            .stream
            .delivered
            .get(&seq)
            .is_some_and(|delivered| &*delivered.worker == worker);
        if !owned {
            return FinishOutcome::Fenced;
        }
        state.stream.remove(seq);
        if let Some(slot) = &run.release {
            Self::release_slot(state, slot, &run.key);
            self.wake_scope(state, slot, SLOT_LEASE, now);
        }
        // The stream entry fences too: with `execution_ttl = 0` generations restart at 1
        // once a record is deleted, so only the entry tells two runs apart.
        let current = state
            .record(&run.key, now)
            .filter(|r| {
                r.generation == run.generation
                    && r.seq() == Some(seq)
                    && r.worker.as_deref() == Some(worker)
            })
            .map(|r| r.state);
        match current {
            Some(ExecutionState::Running) => {}
            Some(ExecutionState::Cancelled) => {
                state.forget_progress(&run.key);
                return FinishOutcome::Recorded;
            }
            _ => return FinishOutcome::Superseded,
        }
        let (end_state, error, result) = match run.outcome {
            Outcome::Completed { result } => (ExecutionState::Completed, None, result),
            Outcome::Failed { error } => (ExecutionState::Failed, Some(error), None),
            Outcome::Cancelled | Outcome::Deferred => (ExecutionState::Cancelled, None, None),
            Outcome::Refused { error } => (ExecutionState::Cancelled, Some(error), None),
        };
        // Kept as long as its producer asked, whatever this handle's own TTL.
        let ttl = state
            .records
            .get(run.key.as_str())
            .map_or(Duration::ZERO, |record| record.ttl);
        if !ttl.is_zero()
            && let Some(result) = result
        {
            // A result already in a result store: the record only says it has one.
            if let Output::Value(value) = result {
                let key = state.key(&run.key);
                state
                    .results
                    .insert((key, run.generation), (value.into_boxed_str(), now + ttl));
            }
            if let Some(record) = state.records.get_mut(run.key.as_str()) {
                record.has_result = true;
            }
        }
        if let Some(next) = run.next {
            self.reschedule(state, &run.key, next, error, now);
            return FinishOutcome::Recorded;
        }
        let event = self
            .store
            .subscriptions
            .is_followed(&run.key)
            .then(|| error.clone());
        state.end(&run.key, end_state, error, at);
        if let Some(error) = event {
            self.publish(&run.key, || Event::State {
                state: end_state,
                generation: run.generation,
                worker: None,
                error,
            });
        }
        FinishOutcome::Recorded
    }

    /// Moves a finished run's key to its next generation, in the same critical section
    /// that recorded its end (finish.lua's `reschedule`): due as `next` says, or parked
    /// as a waiter of a slot that has no room, or of a worker serving its task.
    fn reschedule(
        &self,
        state: &mut State,
        key: &str,
        next: Reschedule,
        error: Option<TaskError>,
        now: Instant,
    ) {
        let wall = state.wall();
        let (waiting, unserved) = match &next.wait {
            Some(Wait::Slot(slot)) => (
                Some(slot).filter(|slot| !Self::has_free_slot(state, slot, now)),
                false,
            ),
            Some(Wait::Server) => (None, true),
            None => (None, false),
        };
        let Some((key, record)) = state.records.get_key_value(key) else {
            return;
        };
        let key = key.clone();
        let when = match next.due {
            _ if waiting.is_some() || unserved => record.when,
            When::Now => wall,
            When::After(delay) => wall + delay,
            When::At(at) => at,
            When::AfterStart(every) => record
                .started_at
                .map_or(wall, |started| (started + every).max(wall)),
        };
        let function = record.function.clone();
        let args = next.args.as_deref().map(|args| state.names.args(args));
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
            None if unserved => {
                state.parked.insert(key.clone());
                state
                    .unserved
                    .entry(function.as_str().to_owned())
                    .or_default()
                    .push_back(key.clone());
                (ExecutionState::Scheduled, None)
            }
            None => state.place(&key, &function, when, wall),
        };
        state.forget_progress(&key);
        let Some(record) = state.records.get_mut(&key) else {
            return;
        };
        record.next_generation(
            when,
            next.attempt,
            args,
            next.traceparent,
            new_state,
            stream_seq,
        );
        record.set_error(error);
        record.set_waiting(waiting.map(|slot| slot.scope.clone()));
        record.set_unserved_since(unserved.then_some(wall));
        self.publish_state(&key, record);
    }

    /// Queues a parked waiter (of a slot, or of a worker serving its task): its message
    /// enters the stream and its record, QUEUED, no longer says what it waited for.
    /// False when it was not parked.
    pub(super) fn queue_waiter(&self, state: &mut State, key: &Arc<str>) -> bool {
        if !state.parked.remove(key) {
            return false;
        }
        let Some(function) = state.records.get(key).map(|r| r.function.clone()) else {
            return false;
        };
        let seq = state.stream.push(Entry {
            key: key.clone(),
            function,
        });
        let Some(record) = state.records.get_mut(key) else {
            return false;
        };
        record.state = ExecutionState::Queued;
        record.set_seq(Some(seq));
        record.set_waiting(None);
        record.set_unserved_since(None);
        self.publish_state(key, record);
        true
    }

    /// Moves due tasks from the schedule to the stream.
    pub(super) fn promote(&self, limit: usize) -> Promotion {
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
        Promotion { moved, next_due_in }
    }

    pub(super) fn cancel_key(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        self.cancel_live(&mut state, key, now)
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
        state.end(key, ExecutionState::Cancelled, None, at);
        self.publish(key, || Event::State {
            state: ExecutionState::Cancelled,
            generation,
            worker: None,
            error: None,
        });
        true
    }

    /// Cancels every queued and scheduled task; returns how many.
    pub(super) fn clear_waiting(&self) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        let keys: Vec<Arc<str>> = state
            .records
            .iter()
            .filter(|(_, r)| matches!(r.state, ExecutionState::Queued | ExecutionState::Scheduled))
            .map(|(key, _)| key.clone())
            .collect();
        keys.iter()
            .filter(|key| self.cancel_live(&mut state, key, now))
            .count()
    }

    pub(super) fn letters(&self) -> Vec<DeadLetter> {
        self.state().dead_letters.values().cloned().collect()
    }

    pub(super) fn forget_letter(&self, key: &str) -> bool {
        self.state().dead_letters.remove(key).is_some()
    }

    /// Takes the lease `name` for `holder` unless it is held.
    pub(super) fn lock(&self, name: &str, holder: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        let held = state.locks.get(name).is_some_and(|(_, until)| *until > now);
        if !held {
            state
                .locks
                .insert(name.to_owned(), (holder.to_owned(), now + ttl));
        }
        !held
    }

    /// Moves the virtual clock.
    pub(super) fn move_clock(&self, advance: Duration, auto_advance: Option<bool>) {
        let mut state = self.state();
        state.clock_offset += advance;
        if let Some(on) = auto_advance {
            state.auto_advance = on;
        }
        // Tasks that just fell due are promoted by the next scheduler pass.
    }

    /// The docket's clock.
    pub(super) fn wall(&self) -> SystemTime {
        self.state().wall()
    }
}
