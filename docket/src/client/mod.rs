//! [`Docket`]: the client handle producers and workers share.

mod add;
mod options;
mod snapshot;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use add::Add;
pub use options::ConnectionOptions;
pub use snapshot::{ActiveWorker, DeadLetter, Snapshot};

use crate::backend::{self, Backend, BackendConfig, BackendUrl, NewTask, ScheduleOutcome};
use crate::error::{Error, Result};
use crate::execution::{Disposition, Execution, ExecutionParts};
use tracing::Instrument;

use crate::observe::{metrics, trace};
use crate::strikes::{Instruction, Strike, StrikeFollower, Strikes};
use crate::task::{Call, Due, Task};

/// The default `execution_ttl`: terminal records and results live 15 minutes.
pub const DEFAULT_EXECUTION_TTL: Duration = Duration::from_mins(15);

/// The counter of calls stricken before they were written.
const STRICKEN: &str = "docket_tasks_stricken";

/// The metrics of one batch of calls, counted per task and kind and recorded once: an
/// `add_many` of thousands of calls of one task takes the metrics lock a few times, not
/// a few times per call.
#[derive(Default)]
struct ScheduleCounts {
    /// (metric, task, count).
    counts: Vec<(&'static str, String, u64)>,
}

impl ScheduleCounts {
    fn add(&mut self, metric: &'static str, task: &str) {
        match self
            .counts
            .iter_mut()
            .find(|(m, t, _)| *m == metric && t == task)
        {
            Some((_, _, n)) => *n += 1,
            None => self.counts.push((metric, task.to_owned(), 1)),
        }
    }

    fn note(&mut self, task: &NewTask, disposition: Disposition) {
        match disposition {
            Disposition::Scheduled | Disposition::Superseded => {
                let written = if task.replace {
                    "docket_tasks_replaced"
                } else {
                    "docket_tasks_added"
                };
                self.add(written, &task.function);
                self.add("docket_tasks_scheduled", &task.function);
                if disposition == Disposition::Superseded {
                    self.add("docket_tasks_superseded", &task.function);
                }
            }
            Disposition::Struck => self.add(STRICKEN, &task.function),
            Disposition::AlreadyScheduled => {}
        }
    }

    fn record(self, docket: &str) {
        for (metric, task, n) in self.counts {
            let mut labels = metrics::labels(docket, None, Some(&task));
            // Calls docket struck, as opposed to those a worker's strike refused.
            if metric == STRICKEN {
                labels.push(("where", "docket".to_owned()));
            }
            metrics::count(metric, labels, n);
        }
    }
}

/// Key names docket uses for itself under the docket's prefix; a task key may not be one
/// of them or start with one of them followed by `:` (it would collide in Redis).
pub(crate) const RESERVED_KEYS: &[&str] = &[
    "stream",
    "queue",
    "strikes",
    "workers",
    "runs",
    "progress",
    "results",
    "task-workers",
    "worker-tasks",
    "state",
    "cancel",
    "lock",
    "concurrency",
    "waiting",
    "waiting-scopes",
    "cooldown",
    "rate",
    "debounce",
    "dead-letters",
    "memory-check",
    "listeners",
];

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
    name: String,
    url: String,
    execution_ttl: Duration,
    max_payload_size: usize,
    backend: Arc<dyn Backend>,
    /// The strikes in effect, kept current by the follower.
    strikes: Arc<Strikes>,
    _follower: StrikeFollower,
}

/// How long a producer that just connected waits for the strikes before checking a
/// call against what it has (a worker waits for them without limit).
const STRIKES_LOAD_WAIT: Duration = Duration::from_secs(5);
/// The strikes stream is compacted past this many entries.
const STRIKES_COMPACT_ABOVE: usize = 256;

impl std::fmt::Debug for Docket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docket")
            .field("name", &self.inner.name)
            .field("url", &redact(&self.inner.url))
            .field("execution_ttl", &self.inner.execution_ttl)
            .finish_non_exhaustive()
    }
}

/// Hides the password of a URL for logs and debug output.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Options for [`Docket::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DocketBuilder {
    name: String,
    url: String,
    execution_ttl: Duration,
    max_payload_size: usize,
    max_deliveries: u32,
    connections: ConnectionOptions,
}

/// The default number of deliveries of one run before it is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// The default largest serialized arguments a call may carry: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 16 * 1024 * 1024;

impl DocketBuilder {
    /// How many times one run may be delivered — its first delivery and redeliveries
    /// after its worker died — before it is dead-lettered: recorded FAILED with a reason
    /// instead of handed to yet another worker it may kill. Default
    /// [`DEFAULT_MAX_DELIVERIES`]; applies to the workers that use this handle.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// The largest serialized arguments (bytes of JSON) a call may carry; larger calls
    /// are refused by `add` with [`Error::PayloadTooLarge`] before anything is written.
    /// Default [`DEFAULT_MAX_PAYLOAD_SIZE`].
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// How this handle connects to Redis: pool size, timeouts, keepalive, reconnection
    /// backoff and TLS files ([`ConnectionOptions`]). `memory://` ignores them.
    ///
    /// ```no_run
    /// # async fn example() -> docket::Result<()> {
    /// let docket = docket::Docket::builder("orders", "rediss://redis.internal:6380/0")
    ///     .connections(
    ///         docket::ConnectionOptions::default()
    ///             .pool_size(4)
    ///             .tls_ca_file("/etc/docket/ca.pem"),
    ///     )
    ///     .connect()
    ///     .await?;
    /// # let _ = docket; Ok(()) }
    /// ```
    pub fn connections(mut self, options: ConnectionOptions) -> Self {
        self.connections = options;
        self
    }

    /// How long terminal records, results and progress are kept (default 15 minutes).
    /// `Duration::ZERO` is fire-and-forget: nothing is kept once a run ends.
    pub fn execution_ttl(mut self, ttl: Duration) -> Self {
        self.execution_ttl = ttl;
        self
    }

    /// Connects.
    ///
    /// # Errors
    /// [`Error::InvalidName`] or [`Error::InvalidUrl`] naming the bad value, or the
    /// backend's connection error.
    pub async fn connect(self) -> Result<Docket> {
        validate_name(&self.name)?;
        let url = BackendUrl::parse(&self.url)?;
        if !self.execution_ttl.is_zero() && self.execution_ttl < Duration::from_millis(1) {
            return Err(Error::InvalidOption {
                name: "execution_ttl",
                value: format!("{:?}", self.execution_ttl),
                reason: "use zero (fire-and-forget) or at least one millisecond".into(),
            });
        }
        let config = BackendConfig {
            name: self.name.clone(),
            execution_ttl: self.execution_ttl,
            max_deliveries: self.max_deliveries,
            connections: self.connections.clone(),
            shown_url: redact(&self.url),
        };
        let backend = backend::open(&url, config).await?;
        let strikes = Strikes::new();
        let follower = StrikeFollower::spawn(backend.clone(), strikes.clone(), self.name.clone());
        Ok(Docket {
            inner: Arc::new(Inner {
                name: self.name,
                url: self.url,
                execution_ttl: self.execution_ttl,
                max_payload_size: self.max_payload_size,
                backend,
                strikes,
                _follower: follower,
            }),
        })
    }
}

/// The calls to write: all of them, unless some were struck (then a copy of the rest,
/// which is rare).
fn unstruck<'a>(tasks: &'a [NewTask], struck: &[bool]) -> std::borrow::Cow<'a, [NewTask]> {
    if !struck.contains(&true) {
        return tasks.into();
    }
    tasks
        .iter()
        .zip(struck)
        .filter(|(_, struck)| !**struck)
        .map(|(task, _)| task.clone())
        .collect::<Vec<_>>()
        .into()
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['{', '}']) || name.chars().any(char::is_whitespace) {
        return Err(Error::InvalidName(name.to_owned()));
    }
    Ok(())
}

fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("a key cannot be empty".into()));
    }
    for reserved in RESERVED_KEYS {
        if key == *reserved
            || key
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with(':'))
        {
            return Err(invalid(format!(
                "`{reserved}` is reserved for docket's own keys"
            )));
        }
    }
    Ok(())
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
        DocketBuilder {
            name: name.into(),
            url: url.into(),
            execution_ttl: DEFAULT_EXECUTION_TTL,
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            connections: ConnectionOptions::default(),
        }
    }

    /// The docket's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How long terminal records and results are kept (zero: not at all).
    pub fn execution_ttl(&self) -> Duration {
        self.inner.execution_ttl
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.inner.backend
    }

    /// Adds a call: runs it now, or `.at(..)` / `.after(..)`; `.key(..)` names it.
    /// A key that is already scheduled, queued or running is left alone
    /// ([`Disposition::AlreadyScheduled`](crate::Disposition::AlreadyScheduled)).
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

    pub(crate) async fn schedule(&self, calls: Vec<Call>, replace: bool) -> Result<Vec<Execution>> {
        let operation = if replace {
            "docket.replace"
        } else {
            "docket.add"
        };
        let span = tracing::info_span!(
            "docket.add",
            otel.name = operation,
            otel.kind = "producer",
            docket.name = %self.name(),
            docket.task = calls.first().map(Call::function).unwrap_or_default(),
            docket.calls = calls.len(),
        );
        self.schedule_calls(calls, replace).instrument(span).await
    }

    async fn schedule_calls(&self, calls: Vec<Call>, replace: bool) -> Result<Vec<Execution>> {
        let traceparent = trace::current_traceparent();
        if !self.inner.strikes.is_loaded()
            && !self.inner.strikes.wait_loaded(STRIKES_LOAD_WAIT).await
        {
            tracing::warn!(docket = %self.name(), "strikes not loaded yet; checking calls against those seen so far");
        }
        let mut tasks = Vec::with_capacity(calls.len());
        for call in calls {
            let args = call.args_json()?.to_owned();
            if args.len() > self.inner.max_payload_size {
                return Err(Error::PayloadTooLarge {
                    function: call.function.to_owned(),
                    size: args.len(),
                    limit: self.inner.max_payload_size,
                });
            }
            let (key, fresh) = match call.key {
                Some(key) => {
                    validate_key(&key)?;
                    (key, false)
                }
                // Debounced calls of a task share one key, so each replaces the last.
                None if call.debounce.is_some() => (format!("debounce:{}", call.function), false),
                None => (uuid::Uuid::now_v7().to_string(), true),
            };
            // Debounce (trailing edge): the call replaces any waiting one and is due
            // once calls have stopped for the settle time.
            let (due, replace) = match call.debounce {
                Some(settle) => (Due::After(settle), true),
                None => (call.due, replace),
            };
            tasks.push(NewTask {
                key,
                function: call.function.to_owned(),
                args,
                due,
                attempt: 1,
                replace,
                traceparent: traceparent.clone(),
                fresh,
            });
        }
        // Stricken calls are answered STRUCK here and never written.
        let struck: Vec<bool> = tasks
            .iter()
            .map(|task| {
                self.inner
                    .strikes
                    .blocking(&task.function, &task.args)
                    .inspect(|strike| {
                        tracing::info!(
                            docket = %self.name(), key = %task.key, task = %task.function,
                            strike = %strike, "call struck"
                        );
                    })
                    .is_some()
            })
            .collect();
        let to_write = unstruck(&tasks, &struck);
        let written = to_write.len();
        let mut outcomes = if to_write.is_empty() {
            Vec::new()
        } else {
            self.backend().schedule(&to_write).await?
        };
        if outcomes.len() != written {
            return Err(Error::Protocol(format!(
                "scheduled {written} calls but the backend answered for {}",
                outcomes.len()
            )));
        }
        outcomes.reverse();
        let mut counts = ScheduleCounts::default();
        let executions = tasks
            .into_iter()
            .zip(struck)
            .map(|(task, struck)| {
                let outcome = if struck {
                    ScheduleOutcome {
                        disposition: Disposition::Struck,
                        generation: 0,
                        when: SystemTime::now(),
                    }
                } else {
                    outcomes.pop().expect("one outcome per written call")
                };
                counts.note(&task, outcome.disposition);
                self.execution_for(task, &outcome)
            })
            .collect();
        counts.record(self.name());
        Ok(executions)
    }

    fn execution_for(&self, task: NewTask, outcome: &ScheduleOutcome) -> Execution {
        tracing::debug!(
            docket = %self.name(),
            key = %task.key,
            task = %task.function,
            disposition = %outcome.disposition,
            generation = outcome.generation,
            "scheduled"
        );
        Execution::new(
            self.clone(),
            ExecutionParts {
                key: task.key,
                function: task.function,
                args: task.args,
                when: outcome.when,
                attempt: task.attempt,
                generation: outcome.generation,
                disposition: outcome.disposition,
                run: None,
            },
        )
    }

    /// Cancels a key: a scheduled or queued task is removed and its record ends
    /// CANCELLED; a running one is recorded CANCELLED and its worker is signalled.
    /// Returns false when nothing live had the key.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn cancel(&self, key: &str) -> Result<bool> {
        let span =
            tracing::info_span!("docket.cancel", docket.name = %self.name(), docket.key = %key);
        let cancelled = self.backend().cancel(key).instrument(span).await?;
        if cancelled {
            metrics::count(
                "docket_tasks_cancelled",
                metrics::labels(self.name(), None, None),
                1,
            );
        }
        Ok(cancelled)
    }

    /// The execution currently recorded for `key`, if any.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn get_execution(&self, key: &str) -> Result<Option<Execution>> {
        let Some(record) = self.backend().record(key).await? else {
            return Ok(None);
        };
        Ok(Some(Execution::new(
            self.clone(),
            ExecutionParts {
                key: record.key,
                function: record.function,
                args: record.args,
                when: record.when,
                attempt: record.attempt,
                generation: record.generation,
                disposition: crate::Disposition::Scheduled,
                run: None,
            },
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

    pub(crate) fn strike_list(&self) -> &Strikes {
        &self.inner.strikes
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
        if !self
            .inner
            .strikes
            .wait_applied(&id, STRIKES_LOAD_WAIT)
            .await
        {
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
        let task = NewTask {
            key: letter.key.clone(),
            function: letter.function.clone(),
            args: letter.args.clone(),
            due: Due::Now,
            attempt: 1,
            replace: true,
            traceparent: trace::current_traceparent(),
            fresh: false,
        };
        let outcome = self
            .backend()
            .schedule(std::slice::from_ref(&task))
            .await?
            .pop()
            .ok_or_else(|| Error::Protocol("the backend scheduled nothing".into()))?;
        self.backend().forget_dead_letter(key).await?;
        Ok(Some(self.execution_for(task, &outcome)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_refused_with_the_key_named() {
        for key in ["stream", "runs:abc", "queue", "progress:x"] {
            let error = validate_key(key).unwrap_err().to_string();
            assert!(error.contains(&format!("`{key}`")), "{error}");
        }
        for key in [
            "streamline",
            "order:42",
            "runs-7",
            "{weird}\n\"key\"",
            "ключ",
        ] {
            validate_key(key).unwrap();
        }
        assert!(validate_key("").is_err());
    }

    #[test]
    fn names_with_braces_or_spaces_are_refused() {
        assert!(validate_name("orders").is_ok());
        for bad in ["", "a b", "{orders}", "x}"] {
            let error = validate_name(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379/0"), "redis://host:6379/0");
    }
}
