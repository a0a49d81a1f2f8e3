//! [`Docket`]: the client handle producers and workers share.

mod add;
mod browse;
mod builder;
mod schedule;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

pub use add::Add;
pub use builder::{
    DEFAULT_EXECUTION_TTL, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_PAYLOAD_SIZE, DocketBuilder,
};
pub use snapshot::Snapshot;

use crate::backend::{Backend, NewTask, redact};
use crate::error::{Error, Result};
use crate::execution::{Core, Execution};
use crate::model::{ActiveWorker, DeadLetter, Disposition, Instruction, Message, Strike, When};
use crate::observe::trace;
use crate::strikes::{StrikeFollower, Strikes};
use crate::task::{Call, Task};
use schedule::STRIKES_LOAD_WAIT;
use tracing::Instrument;

/// A handle to one named docket on one backend. Cheap to clone; share it freely.
///
/// ```
/// # #[docket::task] async fn send_welcome(user_id: u64) {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> docket::Result<()> {
/// use std::time::Duration;
///
/// let docket = docket::Docket::connect("orders", "memory://doc-docket").await?;
/// let now = docket.add(SendWelcome::new(7)).await?;
/// let later = docket
///     .add(SendWelcome::new(8))
///     .key("welcome-8")
///     .after(Duration::from_secs(30))
///     .await?;
/// assert_eq!(later.disposition(), docket::Disposition::Scheduled);
/// assert_eq!(later.state().await?, docket::ExecutionState::Scheduled);
/// # let _ = now; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Docket {
    inner: Arc<Inner>,
}

struct Inner {
    /// The name, backend and record TTL, shared with this handle's executions.
    core: Arc<Core>,
    url: String,
    max_payload_size: usize,
    /// The strikes in effect, kept current by the follower.
    strikes: Arc<Strikes>,
    _follower: StrikeFollower,
}

/// The strikes stream is compacted past this many entries.
const STRIKES_COMPACT_ABOVE: usize = 256;

impl std::fmt::Debug for Docket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docket")
            .field("name", &self.name())
            .field("url", &redact(&self.inner.url))
            .field("execution_ttl", &self.execution_ttl())
            .finish_non_exhaustive()
    }
}

impl Docket {
    /// Connects to the docket `name` at `url` with default options.
    ///
    /// URLs: `memory://NAME` (in-process), `redis://[user:pass@]host:port/db`,
    /// `rediss://...` (TLS), `unix:///path`, `valkey://...`, `valkeys://...`.
    ///
    /// # Errors
    /// As [`DocketBuilder::connect`].
    pub async fn connect(name: impl Into<String>, url: impl Into<String>) -> Result<Self> {
        Self::builder(name, url).connect().await
    }

    /// Starts a builder for a docket with options.
    pub fn builder(name: impl Into<String>, url: impl Into<String>) -> DocketBuilder {
        DocketBuilder::new(name.into(), url.into())
    }

    /// The docket's name.
    pub fn name(&self) -> &str {
        &self.inner.core.name
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How long terminal records and results are kept (zero: not at all).
    pub fn execution_ttl(&self) -> Duration {
        self.inner.core.execution_ttl
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.inner.core.backend
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.inner.core
    }

    /// Adds a call: runs it now, or `.at(..)` / `.after(..)`; `.key(..)` names it.
    /// A key that is already scheduled, queued or running is left alone
    /// ([`Disposition::AlreadyScheduled`](crate::Disposition::AlreadyScheduled)).
    ///
    /// Awaiting it gives an [`Execution`] that knows the task's result type.
    pub fn add<T: Task>(&self, task: T) -> Add<'_, T> {
        Add::new(self, task, false)
    }

    /// Like [`add`](Self::add), but a live copy of the key is superseded: a queued or
    /// scheduled copy is removed, a running one is fenced off from recording its end.
    pub fn replace<T: Task>(&self, task: T) -> Add<'_, T> {
        Add::new(self, task, true)
    }

    /// Adds many calls, of any tasks, in one pipelined batch.
    ///
    /// # Errors
    /// A bad key or unserializable arguments in any call refuses the whole batch before
    /// anything is written; otherwise a backend error.
    pub async fn add_many<I>(&self, calls: I) -> Result<Vec<Execution>>
    where
        I: IntoIterator,
        I::Item: Into<Call>,
    {
        let calls: Vec<Call> = calls.into_iter().map(Into::into).collect();
        self.schedule(calls, false).await
    }

    /// Cancels a key: a scheduled or queued task is removed and its record ends
    /// CANCELLED; a running one is recorded CANCELLED and its worker is signalled.
    /// Returns false when nothing live had the key.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn cancel(&self, key: &str) -> Result<bool> {
        self.inner.core.cancel(key).await
    }

    /// The execution currently recorded for `key`, if any. It does not know its task's
    /// result type: name it with [`Execution::typed`], or read the result as JSON.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn get_execution(&self, key: &str) -> Result<Option<Execution>> {
        let Some(record) = self.backend().record(key).await? else {
            return Ok(None);
        };
        Ok(Some(Execution::new(
            self.core().clone(),
            record.message,
            Disposition::Scheduled,
            None,
        )))
    }

    /// Everything live in the docket right now: queued, scheduled and running tasks,
    /// and the workers seen recently.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        snapshot::take(self).await
    }

    /// The server this docket is on, as it describes itself — `Redis 7.0.15`,
    /// `Valkey 9.1.2` (told apart by `INFO`'s `server_name`) — or `None` on `memory://`
    /// and for a user who may not run `INFO`.
    pub fn server(&self) -> Option<String> {
        self.backend().server()
    }

    /// The workers that sent a heartbeat recently.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn workers(&self) -> Result<Vec<ActiveWorker>> {
        snapshot::workers(self, None).await
    }

    /// The workers that sent a heartbeat recently and can run `task`.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn task_workers(&self, task: &str) -> Result<Vec<ActiveWorker>> {
        snapshot::workers(self, Some(task)).await
    }

    /// Strikes: calls matching `strike` are refused by `add` (STRUCK) and cancelled
    /// instead of run, by every producer and worker of the docket, until restored.
    /// Returns once this handle applies it.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming a malformed strike; otherwise a backend error.
    pub async fn strike(&self, strike: Strike) -> Result<()> {
        self.instruct(Instruction::Strike(strike)).await
    }

    /// Lifts a strike made with [`strike`](Self::strike) (the same task, parameter,
    /// operator and value). Other strikes stay in effect.
    ///
    /// # Errors
    /// As [`strike`](Self::strike).
    pub async fn restore(&self, strike: Strike) -> Result<()> {
        self.instruct(Instruction::Restore(strike)).await
    }

    /// The strikes in effect, as this handle follows them.
    pub fn strikes(&self) -> Vec<Strike> {
        self.inner.strikes.all()
    }

    /// Waits until this handle has replayed the strikes stream; false if `within`
    /// passed first.
    pub async fn strikes_loaded(&self, within: Duration) -> bool {
        self.inner.strikes.wait_loaded(within).await
    }

    /// The strike that blocks a call of `function` with `args`, as this handle follows
    /// them.
    pub(crate) fn blocking_strike(&self, function: &str, args: &str) -> Option<Strike> {
        self.inner.strikes.blocking(function, args)
    }

    async fn instruct(&self, instruction: Instruction) -> Result<()> {
        let span = tracing::info_span!(
            "docket.strike",
            docket.name = %self.name(),
            docket.strike = ?instruction,
        );
        self.instruct_in_span(instruction).instrument(span).await
    }

    async fn instruct_in_span(&self, instruction: Instruction) -> Result<()> {
        let (Instruction::Strike(strike) | Instruction::Restore(strike)) = &instruction else {
            unreachable!("callers give strikes and restores");
        };
        strike.validate().map_err(|reason| Error::InvalidOption {
            name: "strike",
            value: strike.to_string(),
            reason,
        })?;
        let id = self
            .backend()
            .append_strike(instruction, STRIKES_COMPACT_ABOVE)
            .await?;
        if !self.inner.strikes.wait_applied(id, STRIKES_LOAD_WAIT).await {
            tracing::warn!(docket = %self.name(), "a strike was written but not seen back yet");
        }
        Ok(())
    }

    /// Calls dead-lettered after their workers kept dying (see
    /// [`DocketBuilder::max_deliveries`]), oldest first.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>> {
        let mut letters = self.backend().dead_letters().await?;
        letters.sort_by(|a, b| a.dead_at.cmp(&b.dead_at));
        Ok(letters)
    }

    /// Adds a dead-lettered call again (same key, function and arguments; attempt 1)
    /// and forgets the dead letter. Returns `None` when no dead letter has that key.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn retry_dead_letter(&self, key: &str) -> Result<Option<Execution>> {
        let letters = self.backend().dead_letters().await?;
        let Some(letter) = letters.into_iter().find(|l| l.key == key) else {
            return Ok(None);
        };
        let mut message = Message::unplaced(letter.key, letter.function, letter.args, 1);
        message.traceparent = trace::current_traceparent();
        let placed = self
            .schedule_one(NewTask {
                message,
                due: When::Now,
                replace: true,
                fresh: false,
            })
            .await?;
        self.backend().forget_dead_letter(key).await?;
        Ok(Some(placed))
    }

    /// Writes one call as it is (no strike or size check: the caller made them) and
    /// gives its execution.
    pub(crate) async fn schedule_one(&self, task: NewTask) -> Result<Execution> {
        let outcome = self
            .backend()
            .schedule(std::slice::from_ref(&task))
            .await?
            .pop()
            .ok_or_else(|| Error::Protocol("the backend scheduled nothing".into()))?;
        Ok(self.placed(task, &outcome))
    }

    /// Forgets one dead letter; false when no dead letter has that key.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn purge_dead_letter(&self, key: &str) -> Result<bool> {
        self.backend().forget_dead_letter(key).await
    }

    /// Forgets every dead letter. Returns how many there were.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn purge_dead_letters(&self) -> Result<usize> {
        let mut purged = 0;
        for letter in self.backend().dead_letters().await? {
            if self.backend().forget_dead_letter(&letter.key).await? {
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Removes every queued and scheduled task; their records end CANCELLED. Running
    /// tasks are left to finish. Returns how many were removed.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn clear(&self) -> Result<usize> {
        self.backend().clear().await
    }
}
