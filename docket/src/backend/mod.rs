//! The one internal interface both backends implement.
//!
//! It is shaped at the level of docket's operations, and in batches where throughput
//! depends on it (schedule N, claim up to N, finish N). Redis implements every state
//! transition as one Lua script; memory implements each as one critical section. Each
//! operation lives in the same-named file of both backends, and the suite in `tests/`
//! runs every operation against both at this interface.
//!
//! A backend knows docket's data ([`crate::model`]) and its error type, and nothing else
//! of the crate.

mod ids;
pub(crate) mod memory;
mod options;
pub(crate) mod redis;
mod subscriptions;
#[cfg(test)]
mod tests;
mod url;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;

pub(crate) use self::ids::EntryId;
pub use self::options::{BoxError, ConnectionOptions, Credentials};
pub(crate) use self::url::{BackendUrl, redact};
use crate::error::{Error, Result};
use crate::model::{
    ActiveWorker, Activity, ActivityInterval, DeadLetter, Disposition, Event, ExecutionRecord,
    Instruction, Listing, Message, Page, ProgressState, TaskCounts, TaskError, TaskErrorKind, When,
};

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub(crate) type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// Settings every backend operation of one `Docket` handle shares.
#[derive(Debug, Clone)]
pub(crate) struct BackendConfig {
    /// The docket name.
    pub name: String,
    /// How long terminal records, results and progress live; zero keeps none.
    pub execution_ttl: Duration,
    /// Deliveries of one run (the first and redeliveries after its worker stopped)
    /// before it is dead-lettered: recorded FAILED instead of handed to another worker.
    pub max_deliveries: u32,
    /// How to connect (Redis only).
    pub connections: ConnectionOptions,
    /// The URL with its password hidden, for errors and logs.
    pub shown_url: String,
}

/// The failure a dead-lettered run ends with.
pub(crate) fn dead_letter_error(max_deliveries: u32) -> TaskError {
    TaskError::new(
        TaskErrorKind::Failed,
        format!(
            "dead-lettered: delivered {max_deliveries} times without finishing (its workers \
             stopped before it ended)"
        ),
    )
}

/// A call to schedule (`add` or `replace`).
#[derive(Debug, Clone)]
pub(crate) struct NewTask {
    /// The call; the store sets its `when` (from `due`) and its `generation`.
    pub message: Message,
    pub due: When,
    /// `replace`: supersede any live copy instead of refusing.
    pub replace: bool,
    /// The key was generated for this call (a UUID v7), so no record of it can exist
    /// yet: a backend may skip looking for one.
    pub fresh: bool,
}

/// What scheduling one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScheduleOutcome {
    pub disposition: Disposition,
    /// The generation now in the record (the existing one for `ALREADY_SCHEDULED`).
    pub generation: u64,
    /// When the call is due (the existing due time for `ALREADY_SCHEDULED`).
    pub when: SystemTime,
}

/// A message handed to a worker to run: already marked RUNNING for that worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The message's entry in the stream, for ack and renewal.
    pub id: EntryId,
    pub message: Message,
    /// The message was taken over from a worker that stopped renewing it.
    pub redelivered: bool,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Succeeded; its result, if any.
    Completed { result: Option<Output> },
    /// Failed for good.
    Failed { error: TaskError },
    /// Cancelled while running.
    Cancelled,
    /// Not run: admission refused it (the record ends CANCELLED with the reason).
    Refused { error: TaskError },
    /// Not run: put back for later (a behaviour's admission deferred it). Only valid
    /// with a [`Reschedule`].
    Deferred,
}

/// A completed run's result, as its end records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// The serialized result, stored by the backend with the run's end.
    Value(String),
    /// Already put in a result store under this key: the end records only that it is
    /// there.
    InStore(String),
}

/// One finished run to record: how it ended, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finish {
    pub delivery: EntryId,
    pub key: String,
    pub generation: u64,
    pub outcome: Outcome,
    /// Run the key again (a retry, a perpetual task's next run, a deferred admission, a
    /// call handed back): in the same atomic step the record moves to a new generation
    /// instead of ending.
    pub next: Option<Reschedule>,
    /// The concurrency slot the run held: released, and the oldest waiter of its scope
    /// woken. (A run whose call waits for a slot held none.)
    pub release: Option<Slot>,
}

/// How long a slot reserved for a woken waiter lasts before the waiter must claim it
/// (a running holder renews its own with its messages).
pub(crate) const SLOT_LEASE: Duration = Duration::from_secs(30);

/// A concurrency limit's scope (a task, a shared scope, or either per argument value)
/// and how many runs it allows at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub scope: String,
    pub max: u32,
}

/// What a rescheduled call waits for before it is queued, parked as a waiter (it shows
/// as SCHEDULED), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A slot of this concurrency limit (queued at once if one is free by now); woken
    /// when a holder releases one or its lease runs out.
    Slot(Slot),
    /// A worker that serves the call's task: the worker that claimed it does not. Woken
    /// by the heartbeat of a worker that serves it; given up on by
    /// [`Backend::abandon_unserved`].
    Server,
}

/// Calls of one task waiting for a worker that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unserved {
    pub task: String,
    /// How many calls wait.
    pub waiting: usize,
    /// When the call waiting longest was handed back, by the store's clock.
    pub since: SystemTime,
}

/// An admission rule the store decides, atomically for the whole fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdmissionRule {
    /// Take (or renew) a slot of `slot` for `key`, held for `lease`.
    Concurrency {
        slot: Slot,
        key: String,
        lease: Duration,
    },
    /// Start a cooldown window on `scope` unless one is running.
    Cooldown { scope: String, window: Duration },
    /// Count a run in `scope`'s sliding window unless `limit` ran in the last `per`.
    RateLimit {
        scope: String,
        member: String,
        limit: u32,
        per: Duration,
    },
}

/// The next run of a key, scheduled by the step that records the end of this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reschedule {
    /// When it is due, by the store's clock ([`When::AfterStart`] counts from this
    /// run's start; a call that waits is due once what it waits for is there).
    pub due: When,
    /// The next run's attempt: this one's + 1 for a retry, 1 for a perpetual run.
    pub attempt: u32,
    /// New arguments (a JSON object), or `None` to keep the current ones.
    pub args: Option<String>,
    /// The trace context the next message carries.
    pub traceparent: Option<String>,
    /// What the call waits for before it is queued, if anything.
    pub wait: Option<Wait>,
}

/// What recording a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinishOutcome {
    /// The state was written and the message acknowledged.
    Recorded,
    /// The record had moved on to a newer generation: the message was acknowledged, the
    /// record left alone.
    Superseded,
    /// This worker no longer owns the message (it was redelivered elsewhere): nothing written.
    Fenced,
}

/// What a claim read: runnable deliveries, and messages refused as superseded.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub deliveries: Vec<Delivery>,
    /// `(key, function)` of messages whose generation was stale; already acknowledged.
    pub superseded: Vec<(String, String)>,
}

/// What one scheduler pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Promotion {
    /// Tasks moved from the schedule to the stream.
    pub moved: usize,
    /// How long until the next scheduled task is due, if any is scheduled.
    pub next_due_in: Option<Duration>,
}

/// A progress change reported by a running task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProgressUpdate {
    SetTotal(u64),
    Increment(u64),
    SetMessage(String),
}

/// What is live in the docket, for snapshots and `run_until_finished`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveTasks {
    /// Due now, waiting for a worker (in the stream, not yet delivered).
    pub queued: Vec<ExecutionRecord>,
    /// Parked until their due time.
    pub scheduled: Vec<ExecutionRecord>,
    /// Delivered to a worker and not yet acknowledged.
    pub running: Vec<ExecutionRecord>,
}

/// The length of one interval of the activity history heartbeats feed.
pub(crate) const ACTIVITY_INTERVAL: Duration = Duration::from_secs(5);

/// How long the activity history is kept.
pub(crate) const ACTIVITY_KEPT: Duration = Duration::from_mins(15);

/// docket's operations on its store. One implementation per backend.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Schedules a batch of calls, each atomically, in order. Same key twice in one batch
    /// behaves as two calls one after the other.
    fn schedule<'a>(&'a self, tasks: &'a [NewTask]) -> BoxFuture<'a, Result<Vec<ScheduleOutcome>>>;

    /// Opens a consumer for one worker: its own connection for blocking reads.
    fn consumer(&self, worker: &str) -> BoxFuture<'_, Result<Box<dyn Consumer>>>;

    /// Records finished runs, each fenced by generation and ownership, and acknowledges
    /// their messages.
    fn finish(&self, worker: &str, runs: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishOutcome>>>;

    /// Moves up to `limit` due tasks from the schedule to the stream, by the store's clock.
    fn promote_due(&self, limit: usize) -> BoxFuture<'_, Result<Promotion>>;

    /// Renews this worker's hold on in-flight messages. Returns the ids it no longer owns.
    fn renew(&self, worker: &str, ids: Vec<EntryId>) -> BoxFuture<'_, Result<Vec<EntryId>>>;

    /// Takes over up to `limit` messages idle for longer than `idle` (their worker stopped
    /// renewing them), at most one sweeper at a time, and marks them RUNNING for `worker`.
    /// Redeliveries keep their attempt.
    fn reclaim(
        &self,
        worker: &str,
        idle: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>>;

    /// Cancels a scheduled or queued task (removing it) or a running one (recording
    /// CANCELLED and signalling its worker). Returns false when nothing live had the key.
    fn cancel(&self, key: &str) -> BoxFuture<'_, Result<bool>>;

    /// The execution record of a key.
    fn record(&self, key: &str) -> BoxFuture<'_, Result<Option<ExecutionRecord>>>;

    /// The stored result of one generation of a key.
    fn result(&self, key: &str, generation: u64) -> BoxFuture<'_, Result<Option<String>>>;

    /// The current progress of a running key.
    fn progress(&self, key: &str) -> BoxFuture<'_, Result<Option<ProgressState>>>;

    /// Applies a progress update and publishes it.
    fn report_progress(&self, key: &str, update: ProgressUpdate) -> BoxFuture<'_, Result<()>>;

    /// Follows the state and progress events of one key. Subscribed before it resolves.
    fn subscribe(&self, key: &str) -> BoxFuture<'_, Result<EventStream>>;

    /// A stream of cancellation requests for running tasks (keys), for one worker.
    fn cancellations(&self)
    -> BoxFuture<'_, Result<Pin<Box<dyn Stream<Item = Cancelled> + Send>>>>;

    /// Records a worker heartbeat and the tasks it runs; prunes workers not seen for
    /// `expire_after`; queues the calls of those tasks that wait for a worker serving
    /// them ([`Wait::Server`]).
    /// Adds `activity` (the runs that ended since its last heartbeat) to the docket's
    /// activity history.
    fn heartbeat(
        &self,
        worker: &str,
        tasks: &[&'static str],
        expire_after: Duration,
        activity: Activity,
    ) -> BoxFuture<'_, Result<()>>;

    /// The tasks with calls waiting for a worker that serves them.
    fn unserved(&self) -> BoxFuture<'_, Result<Vec<Unserved>>>;

    /// Gives up on the calls of `task` handed back no later than `since` while no live
    /// worker serves it: each is dead-lettered, its record ends FAILED with `error`.
    /// Returns how many; none when a worker serving the task is alive.
    fn abandon_unserved(
        &self,
        task: &str,
        since: SystemTime,
        error: TaskError,
    ) -> BoxFuture<'_, Result<usize>>;

    /// Forgets a worker that stopped, so that it leaves `workers()` at once.
    fn leave(&self, worker: &str, tasks: &[&'static str]) -> BoxFuture<'_, Result<()>>;

    /// The workers seen within their expiry, optionally only those running `task`.
    fn workers(&self, task: Option<&str>) -> BoxFuture<'_, Result<Vec<ActiveWorker>>>;

    /// Every live task with its record.
    fn live(&self) -> BoxFuture<'_, Result<LiveTasks>>;

    /// The calls dead-lettered after their workers kept dying, and why.
    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>>>;

    /// Forgets a dead letter; false when there was none for `key`.
    fn forget_dead_letter(&self, key: &str) -> BoxFuture<'_, Result<bool>>;

    /// One page of `listing`: at most `limit` tasks after the cursor `after` (a
    /// cursor this backend returned, or none for the first page).
    fn page(
        &self,
        listing: Listing,
        after: Option<&str>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page>>;

    /// The activity history from `since` on, one entry per [`ACTIVITY_INTERVAL`] in
    /// which some run ended, oldest first.
    fn activity(&self, since: SystemTime) -> BoxFuture<'_, Result<Vec<ActivityInterval>>>;

    /// How many tasks are live.
    fn live_counts(&self) -> BoxFuture<'_, Result<TaskCounts>>;

    /// Removes every queued and scheduled task (their records end CANCELLED). Returns how many.
    fn clear(&self) -> BoxFuture<'_, Result<usize>>;

    /// Appends a strike instruction (compacting the stream past `compact_above`
    /// entries) and returns its entry.
    fn append_strike(
        &self,
        instruction: Instruction,
        compact_above: usize,
    ) -> BoxFuture<'_, Result<EntryId>>;

    /// Opens a reader of the strikes stream (its own connection for blocking reads).
    fn strike_reader(&self) -> BoxFuture<'_, Result<Box<dyn StrikeReader>>>;

    /// Decides an admission rule: `None` admits the call; `Some(wait)` refuses it, and
    /// for rate limits says how long until there is room (zero otherwise).
    fn admit(&self, rule: AdmissionRule) -> BoxFuture<'_, Result<Option<Duration>>>;

    /// Renews the slots these runs (`(slot, key)`) hold, for `lease`.
    fn renew_slots(&self, held: Vec<(Slot, String)>, lease: Duration) -> BoxFuture<'_, Result<()>>;

    /// Wakes waiters into slots freed by holders whose leases ran out (reserving each
    /// a slot for `lease`). Returns how many woke.
    fn wake_waiters(&self, lease: Duration) -> BoxFuture<'_, Result<usize>>;

    /// Takes the lease `name` for `holder` for `ttl` unless it is held: by anyone,
    /// `holder` included, until it runs out.
    fn try_lock(&self, name: &str, holder: &str, ttl: Duration) -> BoxFuture<'_, Result<bool>>;

    /// The server as it describes itself (`Redis 7.0.15`, `Valkey 9.1.2`), when known.
    fn server(&self) -> Option<String> {
        None
    }

    /// Moves a virtual clock (`memory://` only; see `docket::testing`): `advance` it now,
    /// and whether an idle docket jumps to its next due task from now on.
    fn virtual_time(&self, advance: Duration, auto_advance: Option<bool>) -> Result<()> {
        let _ = (advance, auto_advance);
        Err(Error::InvalidOption {
            name: "virtual time",
            value: "redis".into(),
            reason: "only memory:// dockets have a virtual clock".into(),
        })
    }

    /// The store's clock (the Redis server's `TIME`).
    fn now(&self) -> BoxFuture<'_, Result<SystemTime>>;
}

/// One worker's reading end.
pub(crate) trait Consumer: Send {
    /// Reads up to `max` new messages, waiting up to `block` when none are ready, and
    /// claims them: each is marked RUNNING for this worker unless superseded.
    fn claim(&mut self, max: usize, block: Duration) -> BoxFuture<'_, Result<Claimed>>;
}

/// A strike instruction read back, or why it could not be.
pub(crate) type StrikeEntry = (EntryId, std::result::Result<Instruction, String>);

/// Reads the strikes stream.
pub(crate) trait StrikeReader: Send {
    /// Up to `count` entries after `after` (from the start when `None`), waiting up to
    /// `block` for one when there are none.
    fn read(
        &mut self,
        after: Option<EntryId>,
        block: Option<Duration>,
        count: usize,
    ) -> BoxFuture<'_, Result<Vec<StrikeEntry>>>;
}

/// A running key was cancelled: its worker should interrupt the run of that generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cancelled {
    pub key: String,
    /// The cancelled generation; `None` when the publisher did not say (any run of the key).
    pub generation: Option<u64>,
}

impl Cancelled {
    /// Whether this cancellation is meant for the run of `key` at `generation`.
    pub(crate) fn targets(&self, key: &str, generation: u64) -> bool {
        self.key == key
            && self
                .generation
                .is_none_or(|cancelled| cancelled == generation)
    }
}

/// Opens the backend a URL names.
pub(crate) async fn open(url: &BackendUrl, config: BackendConfig) -> Result<Arc<dyn Backend>> {
    match url {
        BackendUrl::Memory { store } => Ok(Arc::new(memory::MemoryBackend::open(store, &config))),
        BackendUrl::Redis(target) => Ok(Arc::new(
            redis::RedisBackend::connect(target, config).await?,
        )),
    }
}
