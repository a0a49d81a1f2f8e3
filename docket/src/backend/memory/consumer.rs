//! Workers reading the in-memory stream: claim, reclaim from stopped workers, renew the
//! hold on in-flight messages; dead-lettering what keeps killing its workers.

use std::time::{Duration, Instant};

use super::MemoryBackend;
use super::store::{At, Delivered, Entry, Name, State};
use crate::backend::{
    BoxFuture, Claimed, Consumer, DeadLetter, Delivery, EntryId, dead_letter_error,
};
use crate::error::Result;
use crate::model::{Event, ExecutionState};

impl MemoryBackend {
    pub(super) fn open_consumer(&self, worker: &str) -> Box<dyn Consumer> {
        let worker = self.state().names.get(worker);
        Box::new(MemoryConsumer {
            backend: self.clone(),
            worker,
        })
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
            id: EntryId::from_seq(seq),
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
        state.end(key, ExecutionState::Failed, Some(error.clone()), at);
        tracing::error!(key = %key, task = %function.as_str(), "dead-lettered after {} deliveries: recorded FAILED", self.max_deliveries);
        self.publish(key, || Event::State {
            state: ExecutionState::Failed,
            generation,
            worker: None,
            error: Some(error),
        });
    }

    /// Renews `worker`'s hold on these deliveries; returns those it no longer holds.
    pub(super) fn renew_held(&self, worker: &str, ids: Vec<EntryId>) -> Vec<EntryId> {
        let now = Instant::now();
        let mut state = self.state();
        ids.into_iter()
            .filter(|id| {
                let owner = state
                    .stream
                    .delivered
                    .get_mut(&id.seq())
                    .filter(|delivered| &*delivered.worker == worker);
                match owner {
                    Some(delivered) => {
                        delivered.renewed = now;
                        false
                    }
                    None => true,
                }
            })
            .collect()
    }

    /// Takes over deliveries idle for `idle`, one sweeper at a time.
    pub(super) fn reclaim_abandoned(
        &self,
        worker: &str,
        idle: Duration,
        limit: usize,
    ) -> Vec<Delivery> {
        if limit == 0 {
            return Vec::new();
        }
        let now = Instant::now();
        let mut state = self.state();
        let lock_free = state
            .sweep_lock
            .as_ref()
            .is_none_or(|(holder, until)| holder == worker || *until <= now);
        if !lock_free {
            return Vec::new();
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
            return claimed.deliveries;
        }
        let worker = state.names.get(worker);
        let at = state.at(now);
        for seq in abandoned {
            if let Some(delivered) = state.stream.delivered.remove(&seq) {
                let entry = (seq, delivered.entry);
                self.claim_one(&mut state, entry, &worker, true, at, &mut claimed);
            }
        }
        claimed.deliveries
    }
}

/// One worker's reading end of the in-memory stream.
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
            if max == 0 {
                return Ok(Claimed::default());
            }
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
