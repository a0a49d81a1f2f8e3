//! The in-process store: every state transition is one critical section over [`State`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use crate::backend::{Message, WorkerEntry};
use crate::error::TaskError;
use crate::execution::{ExecutionRecord, ExecutionState, ProgressState};
use crate::strikes::Instruction;

/// A record and when it expires (terminal records only).
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub record: ExecutionRecord,
    /// The stream entry holding the queued or delivered message.
    pub stream_seq: Option<u64>,
    /// The concurrency scope it waits in, while parked as a waiter.
    pub waiting: Option<String>,
    /// Deliveries of the current generation (dead-lettered past the limit).
    pub deliveries: u32,
    pub expires: Option<Instant>,
}

/// A message in the stream, and the worker it was delivered to.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub message: Message,
    pub owner: Option<Owner>,
}

#[derive(Debug, Clone)]
pub(super) struct Owner {
    pub worker: String,
    pub renewed: Instant,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub records: HashMap<String, Record>,
    pub stream: BTreeMap<u64, Entry>,
    pub next_seq: u64,
    /// Future tasks by due time.
    pub queue: BTreeSet<(SystemTime, String)>,
    pub parked: HashMap<String, Message>,
    pub results: HashMap<(String, u64), (String, Instant)>,
    pub progress: HashMap<String, ProgressState>,
    pub workers: HashMap<String, WorkerEntry>,
    pub sweep_lock: Option<(String, Instant)>,
    pub last_purge: Option<Instant>,
    /// Virtual time (`docket::testing`): how far the docket's clock is ahead of the
    /// system's, and whether an idle docket jumps to its next due task.
    pub clock_offset: Duration,
    pub auto_advance: bool,
    /// The strikes stream: sequence number and instruction.
    pub strike_log: Vec<(u64, Instruction)>,
    pub next_strike: u64,
    /// Concurrency slots: scope → key → lease expiry.
    pub slots: HashMap<String, HashMap<String, Instant>>,
    /// Waiters for a slot, oldest first: scope → keys.
    pub waiting: HashMap<String, std::collections::VecDeque<String>>,
    /// The size of each scope that has had waiters.
    pub waiting_max: HashMap<String, u32>,
    /// Cooldown windows: scope → end.
    pub cooldowns: HashMap<String, Instant>,
    /// Rate-limit windows: scope → run times.
    pub rates: HashMap<String, std::collections::VecDeque<Instant>>,
    /// Dead-lettered calls, by key.
    pub dead_letters: BTreeMap<String, crate::backend::DeadLetter>,
    /// Leases by name: holder and expiry.
    pub locks: HashMap<String, (String, Instant)>,
}

impl State {
    /// The docket's clock: the system's, plus any virtual advance.
    pub fn wall(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }

    /// Queues `message` when it is due by `wall`, else parks it until its time.
    pub fn place(&mut self, message: Message, wall: SystemTime) -> (ExecutionState, Option<u64>) {
        if message.when <= wall {
            (ExecutionState::Queued, Some(self.push(message)))
        } else {
            self.queue.insert((message.when, message.key.clone()));
            self.parked.insert(message.key.clone(), message);
            (ExecutionState::Scheduled, None)
        }
    }

    /// The live or unexpired record of a key.
    pub fn record(&mut self, key: &str, now: Instant) -> Option<&mut Record> {
        let expired = self
            .records
            .get(key)
            .is_some_and(|r| r.expires.is_some_and(|at| at <= now));
        if expired {
            self.records.remove(key);
        }
        self.records.get_mut(key)
    }

    /// Drops expired records and results, at most once a second.
    pub fn purge(&mut self, now: Instant) {
        if self
            .last_purge
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            return;
        }
        self.last_purge = Some(now);
        self.records
            .retain(|_, r| r.expires.is_none_or(|at| at > now));
        self.results.retain(|_, (_, at)| *at > now);
    }

    pub fn push(&mut self, message: Message) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.stream.insert(
            seq,
            Entry {
                message,
                owner: None,
            },
        );
        seq
    }

    /// Ends a live record: terminal state, TTL (or removal when `ttl` is zero).
    pub fn end(
        &mut self,
        key: &str,
        state: ExecutionState,
        error: Option<TaskError>,
        ttl: Duration,
        now: Instant,
    ) {
        self.progress.remove(key);
        if ttl.is_zero() {
            self.records.remove(key);
            return;
        }
        let wall = self.wall();
        if let Some(record) = self.records.get_mut(key) {
            record.record.state = state;
            record.record.completed_at = Some(wall);
            record.record.error = error;
            record.stream_seq = None;
            record.expires = Some(now + ttl);
        }
    }
}
