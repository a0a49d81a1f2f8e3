//! The in-memory strikes stream: append (with compaction) and read.

use std::sync::Arc;
use std::time::Duration;

use super::store::State;
use super::{MemoryBackend, Store};
use crate::backend::{BoxFuture, EntryId, StrikeEntry, StrikeReader};
use crate::error::Result;
use crate::model::{Instruction, StrikeSet};

impl MemoryBackend {
    /// Appends an instruction; past `compact_above` entries, rewrites the log as the
    /// strikes in effect when that halves it (as strike.lua does).
    pub(super) fn append(&self, instruction: Instruction, compact_above: usize) -> EntryId {
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
            let mut set = StrikeSet::default();
            state
                .strike_log
                .iter()
                .for_each(|(_, i)| set.apply(i.clone()));
            let live = set.all();
            if 2 * (live.len() + 1) < length {
                state.strike_log.clear();
                push(&mut state, Instruction::Reset);
                for strike in live {
                    push(&mut state, Instruction::Strike(strike));
                }
            }
        }
        drop(state);
        self.store.strikes_changed.notify_waiters();
        EntryId::from_seq(id)
    }

    pub(super) fn reader(&self) -> Box<dyn StrikeReader> {
        Box::new(MemoryStrikeReader {
            store: self.store.clone(),
        })
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
            .map(|(seq, instruction)| (EntryId::from_seq(*seq), Ok(instruction.clone())))
            .collect()
    }
}

impl StrikeReader for MemoryStrikeReader {
    fn read(
        &mut self,
        after: Option<EntryId>,
        block: Option<Duration>,
        count: usize,
    ) -> BoxFuture<'_, Result<Vec<StrikeEntry>>> {
        let after = after.map_or(0, EntryId::seq);
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
