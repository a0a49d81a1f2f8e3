//! Calls waiting in memory for a worker that serves their task: queued by such a
//! worker's heartbeat, listed, and given up on after a grace period.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::MemoryBackend;
use super::store::State;
use crate::backend::{DeadLetter, Unserved};
use crate::model::{Event, ExecutionState, TaskError};

impl MemoryBackend {
    /// Queues the calls of `task` waiting for a worker that serves it (heartbeat.lua's
    /// `serve_waiters`). Returns how many.
    pub(super) fn serve_waiters(&self, state: &mut State, task: &str) -> usize {
        let Some(keys) = state.unserved.remove(task) else {
            return 0;
        };
        let mut queued = 0;
        for key in keys {
            let waits = state.records.get(&key).is_some_and(|record| {
                record.state == ExecutionState::Scheduled && record.unserved_since().is_some()
            });
            if waits && self.queue_waiter(state, &key) {
                queued += 1;
            }
        }
        queued
    }

    /// The keys of `task` still waiting for a worker, with when each was handed back;
    /// forgets the entries of calls that no longer wait (cancelled, replaced).
    fn waiting_for_server(state: &mut State, task: &str) -> Vec<(Arc<str>, SystemTime)> {
        let Some(keys) = state.unserved.get(task) else {
            return Vec::new();
        };
        let waiting: Vec<(Arc<str>, SystemTime)> = keys
            .iter()
            .filter_map(|key| {
                let record = state.records.get(key)?;
                let since = record.unserved_since()?;
                (record.state == ExecutionState::Scheduled).then(|| (key.clone(), since))
            })
            .collect();
        if waiting.is_empty() {
            state.unserved.remove(task);
        } else if let Some(keys) = state.unserved.get_mut(task) {
            keys.retain(|key| waiting.iter().any(|(waits, _)| waits == key));
        }
        waiting
    }

    pub(super) fn unserved_tasks(&self) -> Vec<Unserved> {
        let mut state = self.state();
        let tasks: Vec<String> = state.unserved.keys().cloned().collect();
        let mut unserved: Vec<Unserved> = tasks
            .into_iter()
            .filter_map(|task| {
                let waiting = Self::waiting_for_server(&mut state, &task);
                let since = waiting.iter().map(|(_, since)| *since).min()?;
                Some(Unserved {
                    task,
                    waiting: waiting.len(),
                    since,
                })
            })
            .collect();
        unserved.sort_by(|a, b| a.task.cmp(&b.task));
        unserved
    }

    /// Dead-letters the calls of `task` handed back no later than `since`, unless a live
    /// worker serves the task.
    pub(super) fn abandon(&self, task: &str, since: SystemTime, error: &TaskError) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        let served = state
            .workers
            .values()
            .any(|beat| beat.lapses > now && beat.worker.tasks.iter().any(|t| t == task));
        if served {
            return 0;
        }
        let at = state.at(now);
        let dead_at = chrono::DateTime::<chrono::Utc>::from(at.wall)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut abandoned = 0;
        for (key, handed_back) in Self::waiting_for_server(&mut state, task) {
            if handed_back > since {
                continue;
            }
            let Some(record) = state.records.get(&key) else {
                continue;
            };
            let generation = record.generation;
            let letter = DeadLetter {
                key: key.as_ref().to_owned(),
                function: record.function.as_str().to_owned(),
                args: record.args.as_ref().to_owned(),
                error: error.message().to_owned(),
                dead_at: dead_at.clone(),
            };
            state.dead_letters.insert(letter.key.clone(), letter);
            state.parked.remove(&key);
            if let Some(keys) = state.unserved.get_mut(task) {
                keys.retain(|waiting| *waiting != key);
            }
            state.end(&key, ExecutionState::Failed, Some(error.clone()), at);
            self.publish(&key, || Event::State {
                state: ExecutionState::Failed,
                generation,
                worker: None,
                error: Some(error.clone()),
            });
            abandoned += 1;
        }
        if state
            .unserved
            .get(task)
            .is_some_and(std::collections::VecDeque::is_empty)
        {
            state.unserved.remove(task);
        }
        abandoned
    }
}
