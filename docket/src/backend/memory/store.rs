//! The in-process store: every state transition is one critical section over [`State`].
//!
//! The store keeps its own compact form of what Redis keeps in hashes and streams: a
//! key's string is allocated once and shared by its record, its stream entry and the
//! schedule; task and worker names are interned; a stream entry only points at its
//! record, which holds the message's fields. [`ExecutionRecord`]s and messages are
//! built only when they are handed out.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::model::{
    ActiveWorker, Activity, DeadLetter, ExecutionRecord, ExecutionState, Instruction, Message,
    ProgressState, TaskError,
};

/// The arguments of a call without parameters, shared by every such record.
const NO_ARGS: &str = "{}";

/// A key's record: [`ExecutionRecord`]'s fields (its key is the map's), the message's
/// trace context, and the store's bookkeeping.
#[derive(Debug)]
pub(super) struct Record {
    pub state: ExecutionState,
    pub has_result: bool,
    pub attempt: u32,
    /// Deliveries of the current generation (dead-lettered past the limit).
    pub deliveries: u32,
    pub generation: u64,
    /// The stream entry of its message (see [`Record::seq`]).
    stream_seq: Option<NonZeroU64>,
    pub function: Name,
    pub args: Arc<str>,
    /// The worker that ran or runs it.
    pub worker: Option<Name>,
    pub when: SystemTime,
    pub started_at: Option<SystemTime>,
    pub completed_at: Option<SystemTime>,
    /// When it expires (terminal records only).
    pub expires: Option<Instant>,
    /// How long it is kept once its run ends: its producer's `execution_ttl` (zero:
    /// removed at once).
    pub ttl: Duration,
    /// The fields most records never have, boxed.
    rare: Option<Box<Rare>>,
}

/// The rarely present fields of a [`Record`].
#[derive(Debug, Default)]
struct Rare {
    error: Option<TaskError>,
    /// The concurrency scope it waits in, while parked as a waiter.
    waiting: Option<String>,
    /// When a worker that does not serve its task handed it back, while it waits for
    /// one that does.
    unserved_since: Option<SystemTime>,
    /// The trace context its message carries, while it has one.
    traceparent: Option<String>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.error.is_none()
            && self.waiting.is_none()
            && self.unserved_since.is_none()
            && self.traceparent.is_none()
    }
}

impl Record {
    /// A new record of `message`, placed as `state` (in the stream at `stream_seq`),
    /// holding its task's interned name and its arguments in the store's form.
    pub fn new(
        message: &Message,
        function: Name,
        args: Arc<str>,
        state: ExecutionState,
        stream_seq: Option<u64>,
        ttl: Duration,
    ) -> Self {
        let mut record = Self {
            state,
            has_result: false,
            attempt: message.attempt,
            deliveries: 0,
            generation: message.generation,
            stream_seq: stream_seq.and_then(NonZeroU64::new),
            function,
            args,
            worker: None,
            when: message.when,
            started_at: None,
            completed_at: None,
            expires: None,
            ttl,
            rare: None,
        };
        record.set_traceparent(message.traceparent.clone());
        record
    }

    /// Moves the record to its next generation, as a fresh record of the same call due
    /// at `when` (with other arguments when `args` says), placed as `state`.
    pub fn next_generation(
        &mut self,
        when: SystemTime,
        attempt: u32,
        args: Option<Arc<str>>,
        traceparent: Option<String>,
        state: ExecutionState,
        stream_seq: Option<u64>,
    ) {
        *self = Self {
            state,
            has_result: false,
            attempt,
            deliveries: 0,
            generation: self.generation + 1,
            stream_seq: stream_seq.and_then(NonZeroU64::new),
            function: self.function.clone(),
            args: args.unwrap_or_else(|| self.args.clone()),
            worker: None,
            when,
            started_at: None,
            completed_at: None,
            expires: None,
            // Retries and the next runs of a perpetual task inherit the call's TTL.
            ttl: self.ttl,
            rare: None,
        };
        self.set_traceparent(traceparent);
    }

    /// The stream entry holding the queued or delivered message; once the record ended,
    /// the last one (a run cancelled while running is still told apart by it).
    pub fn seq(&self) -> Option<u64> {
        self.stream_seq.map(NonZeroU64::get)
    }

    pub fn set_seq(&mut self, seq: Option<u64>) {
        self.stream_seq = seq.and_then(NonZeroU64::new);
    }

    fn rare_mut(&mut self, set: bool) -> Option<&mut Rare> {
        if set {
            Some(self.rare.get_or_insert_with(Box::default))
        } else {
            self.rare.as_deref_mut()
        }
    }

    /// Drops the boxed fields once none is set.
    fn shrink(&mut self) {
        if self.rare.as_deref().is_some_and(Rare::is_empty) {
            self.rare = None;
        }
    }

    pub fn error(&self) -> Option<&TaskError> {
        self.rare.as_ref().and_then(|rare| rare.error.as_ref())
    }

    pub fn set_error(&mut self, error: Option<TaskError>) {
        if let Some(rare) = self.rare_mut(error.is_some()) {
            rare.error = error;
        }
        self.shrink();
    }

    pub fn waiting(&self) -> Option<&str> {
        self.rare.as_ref().and_then(|rare| rare.waiting.as_deref())
    }

    pub fn set_waiting(&mut self, scope: Option<String>) {
        if let Some(rare) = self.rare_mut(scope.is_some()) {
            rare.waiting = scope;
        }
        self.shrink();
    }

    /// When it was handed back, while it waits for a worker that serves its task.
    pub fn unserved_since(&self) -> Option<SystemTime> {
        self.rare.as_ref().and_then(|rare| rare.unserved_since)
    }

    pub fn set_unserved_since(&mut self, since: Option<SystemTime>) {
        if let Some(rare) = self.rare_mut(since.is_some()) {
            rare.unserved_since = since;
        }
        self.shrink();
    }

    pub fn set_traceparent(&mut self, traceparent: Option<String>) {
        if let Some(rare) = self.rare_mut(traceparent.is_some()) {
            rare.traceparent = traceparent;
        }
        self.shrink();
    }

    /// The record as the backend interface hands it out. A record does not keep its
    /// message's trace context (it travels with the message), as on Redis.
    pub fn to_execution(&self, key: &str) -> ExecutionRecord {
        let mut message = self.to_message(key);
        message.traceparent = None;
        ExecutionRecord {
            message,
            state: self.state,
            worker: self.worker.as_deref().map(str::to_owned),
            started_at: self.started_at,
            completed_at: self.completed_at,
            error: self.error().cloned(),
            has_result: self.has_result,
            ttl: Some(self.ttl),
        }
    }

    /// The message of its current generation, as the backend interface hands it out.
    pub fn to_message(&self, key: &str) -> Message {
        Message {
            key: key.to_owned(),
            function: self.function.as_str().to_owned(),
            args: self.args.as_ref().to_owned(),
            when: self.when,
            attempt: self.attempt,
            generation: self.generation,
            traceparent: self.rare.as_ref().and_then(|rare| rare.traceparent.clone()),
        }
    }
}

/// One moment by both clocks: the monotonic one for expiries and leases, the docket's
/// for timestamps.
#[derive(Debug, Clone, Copy)]
pub(super) struct At {
    pub now: Instant,
    pub wall: SystemTime,
}

/// A stream entry: the key whose record holds the message, and the task's name (for
/// reporting a superseded message whose record has moved on).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: Arc<str>,
    pub function: Name,
}

/// A delivered stream entry and the worker that holds it.
#[derive(Debug)]
pub(super) struct Delivered {
    pub entry: Entry,
    pub worker: Name,
    pub renewed: Instant,
}

/// The stream: messages waiting for a worker, oldest first, and those delivered.
///
/// Entries are numbered in the order they enter, so the waiting ones stay sorted by
/// number; one withdrawn before delivery leaves a hole that is skipped, and the holes
/// are swept out once they are half the queue.
#[derive(Debug, Default)]
pub(super) struct Stream {
    next_seq: u64,
    waiting: VecDeque<(u64, Option<Entry>)>,
    /// Holes in `waiting`.
    withdrawn: usize,
    /// Delivered entries by number (a worker's in-flight messages).
    pub delivered: BTreeMap<u64, Delivered>,
}

impl Stream {
    /// Appends an entry; returns its number.
    pub fn push(&mut self, entry: Entry) -> u64 {
        self.next_seq += 1;
        self.waiting.push_back((self.next_seq, Some(entry)));
        self.next_seq
    }

    /// Takes the oldest waiting entry out of the stream.
    pub fn pop_waiting(&mut self) -> Option<(u64, Entry)> {
        while let Some((seq, entry)) = self.waiting.pop_front() {
            match entry {
                Some(entry) => return Some((seq, entry)),
                None => self.withdrawn -= 1,
            }
        }
        None
    }

    /// Removes an entry, waiting or delivered.
    pub fn remove(&mut self, seq: u64) {
        if self.delivered.remove(&seq).is_some() {
            return;
        }
        let Ok(index) = self.waiting.binary_search_by_key(&seq, |(seq, _)| *seq) else {
            return;
        };
        if self.waiting[index].1.take().is_none() {
            return;
        }
        self.withdrawn += 1;
        while self
            .waiting
            .back()
            .is_some_and(|(_, entry)| entry.is_none())
        {
            self.waiting.pop_back();
            self.withdrawn -= 1;
        }
        while self
            .waiting
            .front()
            .is_some_and(|(_, entry)| entry.is_none())
        {
            self.waiting.pop_front();
            self.withdrawn -= 1;
        }
        if self.withdrawn > 32 && self.withdrawn * 2 > self.waiting.len() {
            self.waiting.retain(|(_, entry)| entry.is_some());
            self.withdrawn = 0;
        }
    }

    /// The entries waiting for a worker, oldest first.
    pub fn waiting_entries(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.waiting
            .iter()
            .filter_map(|(seq, entry)| Some((*seq, entry.as_ref()?)))
    }

    /// Entries waiting for a worker.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len() - self.withdrawn
    }

    pub fn is_empty(&self) -> bool {
        self.waiting_len() == 0 && self.delivered.is_empty()
    }
}

/// A worker's last heartbeat, and when it lapses without another.
#[derive(Debug)]
pub(super) struct Beat {
    pub worker: ActiveWorker,
    pub lapses: Instant,
}

/// A task's or a worker's name, stored once however many records hold it, behind a
/// pointer half the size of an `Arc<str>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Name(Arc<String>);

impl Name {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Name {
    // As `str` hashes, for lookups by `&str`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// The interned names, and the arguments every call without parameters shares.
#[derive(Debug, Default)]
pub(super) struct Names {
    names: HashSet<Name>,
    no_args: Option<Arc<str>>,
}

impl Names {
    pub fn get(&mut self, name: &str) -> Name {
        if let Some(name) = self.names.get(name) {
            return name.clone();
        }
        let name = Name(Arc::new(name.to_owned()));
        self.names.insert(name.clone());
        name
    }

    /// The arguments of a call, shared with every other call without parameters.
    pub fn args(&mut self, args: &str) -> Arc<str> {
        if args == NO_ARGS {
            self.no_args
                .get_or_insert_with(|| Arc::from(NO_ARGS))
                .clone()
        } else {
            Arc::from(args)
        }
    }

    /// Forgets the names nothing holds any more.
    fn prune(&mut self) {
        self.names.retain(|name| Arc::strong_count(&name.0) > 1);
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Records by key, boxed: the table's spare room and its copies as it grows then
    /// cost a pointer per slot rather than a record.
    pub records: HashMap<Arc<str>, Box<Record>>,
    pub stream: Stream,
    pub names: Names,
    /// Future tasks by due time.
    pub queue: BTreeSet<(SystemTime, Arc<str>)>,
    /// Keys whose message is parked: due later, or waiting (for a slot, for a worker).
    pub parked: HashSet<Arc<str>>,
    pub results: HashMap<(Arc<str>, u64), (Box<str>, Instant)>,
    pub progress: HashMap<String, ProgressState>,
    pub workers: HashMap<String, Beat>,
    /// The activity history: interval number → what ended in it.
    pub activity: BTreeMap<u64, Activity>,
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
    pub waiting: HashMap<String, VecDeque<Arc<str>>>,
    /// Calls waiting for a worker that serves their task, oldest first: task → keys.
    pub unserved: HashMap<String, VecDeque<Arc<str>>>,
    /// The size of each scope that has had waiters.
    pub waiting_max: HashMap<String, u32>,
    /// Cooldown windows: scope → end.
    pub cooldowns: HashMap<String, Instant>,
    /// Rate-limit windows: scope → run times.
    pub rates: HashMap<String, VecDeque<Instant>>,
    /// Dead-lettered calls, by key.
    pub dead_letters: BTreeMap<String, DeadLetter>,
    /// Leases by name: holder and expiry.
    pub locks: HashMap<String, (String, Instant)>,
}

impl State {
    /// The docket's clock: the system's, plus any virtual advance.
    pub fn wall(&self) -> SystemTime {
        SystemTime::now() + self.clock_offset
    }

    /// The moment a critical section works at: like a Lua script's one `TIME`, every
    /// run a batch claims or finishes gets the same timestamps.
    pub fn at(&self, now: Instant) -> At {
        At {
            now,
            wall: self.wall(),
        }
    }

    /// The stored form of a key: the record's, when it has one.
    pub fn key(&self, key: &str) -> Arc<str> {
        self.records
            .get_key_value(key)
            .map_or_else(|| Arc::from(key), |(key, _)| key.clone())
    }

    /// Queues `key`'s message (of `function`) when `when` is due by `wall`, else parks
    /// it until its time.
    pub fn place(
        &mut self,
        key: &Arc<str>,
        function: &Name,
        when: SystemTime,
        wall: SystemTime,
    ) -> (ExecutionState, Option<u64>) {
        if when <= wall {
            let seq = self.stream.push(Entry {
                key: key.clone(),
                function: function.clone(),
            });
            (ExecutionState::Queued, Some(seq))
        } else {
            self.queue.insert((when, key.clone()));
            self.parked.insert(key.clone());
            (ExecutionState::Scheduled, None)
        }
    }

    /// The record of a key that is scheduled, queued or running: one lookup, as an
    /// expired record is terminal and never live.
    pub fn live(&mut self, key: &str) -> Option<&mut Record> {
        self.records
            .get_mut(key)
            .map(|record| &mut **record)
            .filter(|record| !record.state.is_terminal())
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
        self.records.get_mut(key).map(|record| &mut **record)
    }

    /// Drops expired records and results, and names nothing holds, at most once a
    /// second.
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
        self.names.prune();
    }

    /// Forgets a key's progress.
    pub fn forget_progress(&mut self, key: &str) {
        if !self.progress.is_empty() {
            self.progress.remove(key);
        }
    }

    /// Ends a live record at `at`: terminal state, kept for its TTL (or removed when that
    /// is zero).
    pub fn end(&mut self, key: &str, state: ExecutionState, error: Option<TaskError>, at: At) {
        self.forget_progress(key);
        if self
            .records
            .get(key)
            .is_some_and(|record| record.ttl.is_zero())
        {
            self.records.remove(key);
            return;
        }
        if let Some(record) = self.records.get_mut(key) {
            record.state = state;
            record.completed_at = Some(at.wall);
            record.expires = Some(at.now + record.ttl);
            // Its message is gone; a terminal record waits for nothing.
            record.rare = None;
            record.set_error(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> Entry {
        Entry {
            key: Arc::from(key),
            function: Names::default().get("task"),
        }
    }

    fn popped(stream: &mut Stream) -> Vec<(u64, String)> {
        std::iter::from_fn(|| stream.pop_waiting())
            .map(|(seq, entry)| (seq, entry.key.as_ref().to_owned()))
            .collect()
    }

    #[test]
    fn withdrawn_entries_are_skipped_and_the_rest_stay_in_order() {
        let mut stream = Stream::default();
        let seqs: Vec<u64> = (0..5)
            .map(|i| stream.push(entry(&format!("k{i}"))))
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        stream.remove(2);
        stream.remove(2);
        stream.remove(5);
        assert_eq!(stream.waiting_len(), 3);
        stream.remove(1);
        assert_eq!(stream.waiting_len(), 2);
        assert_eq!(popped(&mut stream), [(3, "k2".into()), (4, "k3".into())]);
        assert!(stream.is_empty());
        assert_eq!(stream.push(entry("k5")), 6, "numbers are never reused");
    }

    #[test]
    fn holes_are_swept_out_once_they_are_half_the_queue() {
        let mut stream = Stream::default();
        for i in 0..1000 {
            stream.push(entry(&format!("k{i}")));
        }
        for seq in (1..=1000).filter(|seq| seq % 3 != 0) {
            stream.remove(seq);
            assert!(
                stream.withdrawn <= 32 || stream.withdrawn * 2 <= stream.waiting.len(),
                "{} holes in {} slots",
                stream.withdrawn,
                stream.waiting.len()
            );
        }
        assert_eq!(stream.waiting_len(), 333);
        let left = popped(&mut stream);
        assert_eq!(left.len(), 333);
        assert!(left.iter().all(|(seq, _)| seq % 3 == 0));
        assert!(left.windows(2).all(|pair| pair[0].0 < pair[1].0));
    }

    #[test]
    fn delivered_entries_leave_the_waiting_count() {
        let mut stream = Stream::default();
        let seq = stream.push(entry("a"));
        stream.push(entry("b"));
        let (taken, entry) = stream.pop_waiting().expect("an entry");
        assert_eq!(taken, seq);
        stream.delivered.insert(
            seq,
            Delivered {
                entry,
                worker: Names::default().get("w"),
                renewed: Instant::now(),
            },
        );
        assert_eq!((stream.waiting_len(), stream.delivered.len()), (1, 1));
        stream.remove(seq);
        assert_eq!((stream.waiting_len(), stream.delivered.len()), (1, 0));
        assert!(!stream.is_empty());
    }

    #[test]
    fn names_are_shared_and_forgotten_once_unused() {
        let mut names = Names::default();
        let first = names.get("task");
        assert!(Arc::ptr_eq(&first.0, &names.get("task").0));
        let none = names.args(NO_ARGS);
        assert!(Arc::ptr_eq(&none, &names.args(NO_ARGS)));
        let some = names.args(r#"{"a":1}"#);
        assert!(!Arc::ptr_eq(&some, &names.args(r#"{"a":1}"#)));
        let worker = names.get("worker");
        drop(first);
        names.prune();
        assert_eq!(names.names.len(), 1, "only the name still held");
        assert!(names.names.contains("worker"));
        drop(worker);
    }

    #[test]
    fn a_record_boxes_only_what_it_has() {
        let mut message = Message::unplaced("k".into(), "task".into(), NO_ARGS.into(), 1);
        message.generation = 1;
        let function = Names::default().get("task");
        let mut record = Record::new(
            &message,
            function,
            Arc::from(NO_ARGS),
            ExecutionState::Queued,
            Some(1),
            Duration::from_mins(1),
        );
        assert!(record.rare.is_none());
        assert_eq!(record.seq(), Some(1));
        record.set_waiting(Some("scope".into()));
        assert_eq!(record.waiting(), Some("scope"));
        record.set_waiting(None);
        assert!(record.rare.is_none(), "dropped once empty");
        let message = record.to_message("k");
        assert_eq!(
            (message.key.as_str(), message.args.as_str()),
            ("k", NO_ARGS)
        );
        assert_eq!(record.to_execution("k").message.key, "k");
    }
}
