//! Admission in memory: admission.lua and the prelude's `wake_scope`, each a critical
//! section over the store.

use std::time::{Duration, Instant};

use super::MemoryBackend;
use super::store::State;
use crate::backend::{AdmissionRule, Slot};
use crate::model::ExecutionState;

impl MemoryBackend {
    /// Decides a rule: `None` admits; `Some(wait)` refuses.
    pub(super) fn decide(&self, rule: AdmissionRule) -> Option<Duration> {
        let now = Instant::now();
        let mut state = self.state();
        match rule {
            AdmissionRule::Concurrency { slot, key, lease } => {
                let admitted = state
                    .slots
                    .get(&slot.scope)
                    .is_some_and(|h| h.get(&key).is_some_and(|until| *until >= now))
                    || Self::has_free_slot(&mut state, &slot, now);
                if admitted {
                    state
                        .slots
                        .entry(slot.scope)
                        .or_default()
                        .insert(key, now + lease);
                }
                (!admitted).then_some(Duration::ZERO)
            }
            AdmissionRule::Cooldown { scope, window } => {
                if state
                    .cooldowns
                    .get(&scope)
                    .is_some_and(|until| *until > now)
                {
                    return Some(Duration::ZERO);
                }
                state.cooldowns.insert(scope, now + window);
                None
            }
            AdmissionRule::RateLimit {
                scope, limit, per, ..
            } => {
                let runs = state.rates.entry(scope).or_default();
                while runs
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= per)
                {
                    runs.pop_front();
                }
                if runs.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
                    runs.push_back(now);
                    return None;
                }
                let oldest = *runs.front()?;
                Some(
                    (oldest + per)
                        .saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                )
            }
        }
    }

    /// Extends the slots these runs hold.
    pub(super) fn extend_slots(&self, held: Vec<(Slot, String)>, lease: Duration) {
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
    }

    /// Drops expired holders of `slot`; whether one more may hold it.
    pub(super) fn has_free_slot(state: &mut State, slot: &Slot, now: Instant) -> bool {
        let holders = state.slots.entry(slot.scope.clone()).or_default();
        holders.retain(|_, until| *until >= now);
        holders.len() < usize::try_from(slot.max).unwrap_or(usize::MAX)
    }

    pub(super) fn release_slot(state: &mut State, slot: &Slot, key: &str) {
        if let Some(holders) = state.slots.get_mut(&slot.scope) {
            holders.remove(key);
        }
    }

    /// Wakes waiters of `slot` into its free slots, oldest first, reserving each a slot
    /// for `lease`.
    pub(super) fn wake_scope(
        &self,
        state: &mut State,
        slot: &Slot,
        lease: Duration,
        now: Instant,
    ) -> usize {
        let mut woke = 0;
        while Self::has_free_slot(state, slot, now) {
            let Some(key) = state
                .waiting
                .get_mut(&slot.scope)
                .and_then(std::collections::VecDeque::pop_front)
            else {
                break;
            };
            let valid = state.records.get(&key).is_some_and(|r| {
                r.state == ExecutionState::Scheduled && r.waiting() == Some(slot.scope.as_str())
            });
            if !valid || !self.queue_waiter(state, &key) {
                continue;
            }
            state
                .slots
                .entry(slot.scope.clone())
                .or_default()
                .insert(key.as_ref().to_owned(), now + lease);
            woke += 1;
        }
        if woke > 0 {
            self.store.ready.notify_waiters();
        }
        woke
    }

    /// Wakes waiters of every scope (holders that died free their slots by expiring),
    /// reserving each a slot for `lease`.
    pub(super) fn wake_all(&self, lease: Duration) -> usize {
        let now = Instant::now();
        let mut state = self.state();
        let scopes: Vec<Slot> = state
            .waiting
            .iter()
            .filter(|(_, keys)| !keys.is_empty())
            .map(|(scope, _)| Slot {
                scope: scope.clone(),
                max: state.waiting_max.get(scope).copied().unwrap_or(1),
            })
            .collect();
        scopes
            .iter()
            .map(|slot| self.wake_scope(&mut state, slot, lease, now))
            .sum()
    }
}
