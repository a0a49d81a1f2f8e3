//! The Redis backend: every state transition is one Lua script.
//!
//! Layout: [`keys`] names every key and channel; [`scripts`] holds the Lua scripts (one
//! per transition, in `lua/`, sharing `lua/prelude.lua`); [`wire`] reads what the
//! scripts write; [`connection`] opens the connections. The operations are grouped by
//! concern, in files named as their `memory://` twins: [`lifecycle`] (schedule, finish,
//! promote, cancel, clear, dead letters, leases), [`consumer`] (claim, reclaim, renew),
//! [`observe`] (records, results, progress, snapshots, heartbeats), [`strikes`],
//! [`admission`] and [`unserved`] (calls waiting for a worker that serves their task);
//! [`subscriber`] follows events and cancellations on the handle's one pub/sub
//! connection.

mod admission;
mod connection;
mod consumer;
mod keys;
mod lifecycle;
mod observe;
mod prelude;
mod scripts;
mod server;
mod strikes;
mod subscriber;
mod unserved;
mod wire;

#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;

use self::connection::{Connection, Endpoint, Pool};
use self::keys::Keys;
use super::subscriptions::Subscriptions;
use super::{
    Activity, ActivityInterval, AdmissionRule, Backend, BackendConfig, BoxFuture, Consumer,
    Delivery, EntryId, EventStream, Finish, FinishOutcome, Listing, LiveTasks, NewTask, Page,
    ProgressUpdate, Promotion, ScheduleOutcome, Slot, StrikeReader, TaskCounts, Unserved,
};
use crate::error::{Error, Result, StoreError, WriteRefusal};
use crate::model::{
    ActiveWorker, DeadLetter, ExecutionRecord, Instruction, ProgressState, TaskError,
};

#[cfg(test)]
pub(in crate::backend) use self::wire::epoch_millis;

/// A docket stored in Redis (or Valkey).
pub(crate) struct RedisBackend {
    shared: Arc<Shared>,
}

/// What the backend and its consumers share.
struct Shared {
    /// Opens the dedicated connections (blocking reads, pub/sub).
    endpoint: Endpoint,
    /// Commands and scripts; each connection reconnects by itself.
    pool: Pool,
    /// Who follows which key, served on one pub/sub connection ([`subscriber`]).
    subscriptions: Arc<Subscriptions>,
    keys: Keys,
    /// `execution_ttl` in milliseconds; 0 is fire-and-forget.
    ttl_ms: u64,
    /// Deliveries before a run is dead-lettered.
    max_deliveries: u32,
    /// What the server said it is (`Redis 7.0.15`), when it said.
    server: Option<String>,
    /// Replicas an add or a run's end waits for, and for how long (none: 0).
    wait_replicas: usize,
    wait_timeout: Duration,
}

impl Shared {
    /// A handle on a command connection (cheap: it is shared).
    fn connection(&self) -> Connection {
        self.pool.get()
    }

    /// Runs a script that writes what must be acknowledged (an add, a run's end): when
    /// replicas are to hold it first, `WAIT`s for them over the same socket.
    async fn write<T: redis::FromRedisValue>(
        &self,
        invocation: &scripts::Invocation<'_>,
    ) -> Result<Written<T>> {
        if self.wait_replicas == 0 {
            let reply = invocation.invoke_async(&mut self.connection()).await?;
            return Ok(Written { reply, short: None });
        }
        let mut pinned = self.connection().pinned().await?;
        let reply = invocation.invoke_async(&mut pinned).await?;
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.wait_replicas)
            .arg(wire::duration_millis(self.wait_timeout).max(1));
        let confirmed: usize = pinned.query_at_key(self.keys.stream(), &wait).await?;
        let short = (confirmed < self.wait_replicas).then_some(Error::NotReplicated {
            confirmed,
            wanted: self.wait_replicas,
            timeout: self.wait_timeout,
        });
        Ok(Written { reply, short })
    }
}

/// A write's reply, and whether fewer replicas than asked for confirmed it.
struct Written<T> {
    reply: T,
    short: Option<Error>,
}

impl<T> Written<T> {
    /// The reply of a write whose producer is told when too few replicas hold it.
    fn acknowledged(self) -> Result<T> {
        match self.short {
            Some(error) => Err(error),
            None => Ok(self.reply),
        }
    }

    /// The reply of a write that stands on the master however many replicas hold it
    /// (a run's end: saying otherwise would have it recorded twice); a shortfall is
    /// logged.
    fn recorded(self, worker: &str) -> T {
        if let Some(error) = self.short {
            tracing::warn!(%worker, %error, "recorded the end of runs on the master only");
        }
        self.reply
    }
}

impl RedisBackend {
    /// Connects to the Redis server (or cluster) `target` names, checks the server, and
    /// makes sure the docket's stream and consumer group exist.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL or a TLS file cannot be used;
    /// [`Error::Connect`] naming the URL (password hidden) when the server cannot be
    /// reached, refuses the credentials or the TLS handshake, or denies docket's keys;
    /// [`Error::UnsupportedServer`] for a server older than Redis 6.2.
    pub(crate) async fn connect(
        target: &super::url::RedisUrl,
        config: BackendConfig,
    ) -> Result<Self> {
        let mut endpoint = Endpoint::new(target, &config.connections, &config.shown_url)?;
        let shown = endpoint.shown().to_owned();
        let failed = |error: redis::RedisError| connect_error(&shown, target.is_tls(), &error);
        let mut node = endpoint.node().await.map_err(failed)?;
        let server = server::check(&mut node, &shown).await?;
        drop(node);
        let pool = endpoint.pool().await.map_err(failed)?;
        let keys = if endpoint.is_cluster() {
            Keys::for_cluster(&config.name)
        } else {
            Keys::new(&config.name)
        };
        match connection::ensure_group(&mut pool.get(), &keys).await {
            Ok(()) => {}
            // A server refusing writes now is weather: the handle works once it clears
            // (a worker re-creates a missing group when it reads).
            Err(error) if write_refusal(&error).is_some() => {
                tracing::warn!(url = %shown, %error, "the server refuses writes for now");
            }
            Err(error) => return Err(failed(error)),
        }
        let options = endpoint.options();
        let (wait_replicas, wait_timeout) = (options.wait_replicas, options.wait_timeout);
        Ok(Self {
            shared: Arc::new(Shared {
                endpoint,
                pool,
                subscriptions: Subscriptions::served(),
                keys,
                ttl_ms: wire::duration_millis(config.execution_ttl),
                max_deliveries: config.max_deliveries.max(1),
                server: server.map(|server| server.describe()),
                wait_replicas,
                wait_timeout,
            }),
        })
    }
}

/// One line saying why connecting to `shown` (over TLS or not) failed.
fn connect_error(shown: &str, tls: bool, error: &redis::RedisError) -> Error {
    let text = error.to_string();
    let reason = if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS"))
    {
        format!("authentication failed: wrong user name or password ({text})")
    } else if matches!(error.code(), Some("NOAUTH")) {
        format!("the server needs a password: put it in the URL ({text})")
    } else if matches!(error.code(), Some("NOPERM")) || text.contains("NOPERM") {
        format!("the user may not use this docket's keys or commands (check its ACL): {text}")
    } else if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading) {
        format!("the server is still loading its data after a restart: {text}")
    } else if error.is_connection_refusal() {
        format!("nothing answers there (is the server running?): {text}")
    } else if error.is_timeout() && tls {
        format!("timed out connecting or in the TLS handshake (does this port speak TLS?): {text}")
    } else if error.is_timeout() {
        format!("timed out: {text}")
    } else if !tls && (error.is_connection_dropped() || text.contains("reset by peer")) {
        format!(
            "the server closed the connection at once (a TLS port? then use `rediss://`): {text}"
        )
    } else if ["tls", "certificate", "handshake", "alert"]
        .iter()
        .any(|word| text.to_ascii_lowercase().contains(word))
    {
        format!("the TLS handshake failed: {text}")
    } else {
        text
    };
    Error::Connect {
        url: shown.to_owned(),
        reason,
        unreachable: unreachable(error),
    }
}

/// Whether a Redis error means the server is not there (yet): refused, timed out, cut
/// off, or still loading its data after a restart — worth waiting for.
fn unreachable(error: &redis::RedisError) -> bool {
    error.is_connection_refusal()
        || error.is_timeout()
        || error.is_io_error()
        || error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
}

/// The refusal to write an error is, if it is one: the server's own code, or (on Redis
/// 6.2, which wraps a refusal inside a script in a script error) the code it quotes.
fn write_refusal(error: &redis::RedisError) -> Option<WriteRefusal> {
    if let Some(refusal) = error.code().and_then(WriteRefusal::from_code) {
        return Some(refusal);
    }
    let detail = error.detail()?;
    WriteRefusal::ALL
        .into_iter()
        .find(|refusal| detail.contains(&format!("-{} ", refusal.code())))
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Self {
        if let Some(refusal) = write_refusal(&error) {
            return Error::WriteRefused {
                refusal,
                message: error.to_string(),
            };
        }
        let unreachable = unreachable(&error);
        Error::Redis(StoreError::new(error, unreachable))
    }
}

impl Backend for RedisBackend {
    fn server(&self) -> Option<String> {
        self.shared.server.clone()
    }

    fn schedule<'a>(&'a self, tasks: &'a [NewTask]) -> BoxFuture<'a, Result<Vec<ScheduleOutcome>>> {
        Box::pin(lifecycle::schedule(&self.shared, tasks))
    }

    fn consumer(&self, worker: &str) -> BoxFuture<'_, Result<Box<dyn Consumer>>> {
        let worker = worker.to_owned();
        Box::pin(async move {
            let consumer = consumer::RedisConsumer::open(Arc::clone(&self.shared), worker).await?;
            Ok(Box::new(consumer) as Box<dyn Consumer>)
        })
    }

    fn finish(&self, worker: &str, runs: Vec<Finish>) -> BoxFuture<'_, Result<Vec<FinishOutcome>>> {
        let worker = worker.to_owned();
        Box::pin(async move { lifecycle::finish(&self.shared, &worker, runs).await })
    }

    fn promote_due(&self, limit: usize) -> BoxFuture<'_, Result<Promotion>> {
        Box::pin(lifecycle::promote_due(&self.shared, limit))
    }

    fn renew(&self, worker: &str, ids: Vec<EntryId>) -> BoxFuture<'_, Result<Vec<EntryId>>> {
        let worker = worker.to_owned();
        Box::pin(async move { consumer::renew(&self.shared, &worker, ids).await })
    }

    fn reclaim(
        &self,
        worker: &str,
        idle: Duration,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Delivery>>> {
        let worker = worker.to_owned();
        Box::pin(async move { consumer::reclaim(&self.shared, &worker, idle, limit).await })
    }

    fn cancel(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let key = key.to_owned();
        Box::pin(async move { lifecycle::cancel(&self.shared, &key).await })
    }

    fn record(&self, key: &str) -> BoxFuture<'_, Result<Option<ExecutionRecord>>> {
        let key = key.to_owned();
        Box::pin(async move { observe::record(&self.shared, &key).await })
    }

    fn result(&self, key: &str, generation: u64) -> BoxFuture<'_, Result<Option<String>>> {
        let key = key.to_owned();
        Box::pin(async move { observe::result(&self.shared, &key, generation).await })
    }

    fn progress(&self, key: &str) -> BoxFuture<'_, Result<Option<ProgressState>>> {
        let key = key.to_owned();
        Box::pin(async move { observe::progress(&self.shared, &key).await })
    }

    fn report_progress(&self, key: &str, update: ProgressUpdate) -> BoxFuture<'_, Result<()>> {
        let key = key.to_owned();
        Box::pin(async move { observe::report_progress(&self.shared, &key, update).await })
    }

    fn subscribe(&self, key: &str) -> BoxFuture<'_, Result<EventStream>> {
        let key = key.to_owned();
        Box::pin(async move { subscriber::subscribe(&self.shared, &key).await })
    }

    fn cancellations(
        &self,
    ) -> BoxFuture<'_, Result<Pin<Box<dyn Stream<Item = super::Cancelled> + Send>>>> {
        Box::pin(subscriber::cancellations(&self.shared))
    }

    fn heartbeat(
        &self,
        worker: &str,
        tasks: &[&'static str],
        expire_after: Duration,
        activity: Activity,
    ) -> BoxFuture<'_, Result<()>> {
        let worker = worker.to_owned();
        let tasks = tasks.to_vec();
        Box::pin(async move {
            observe::heartbeat(&self.shared, &worker, &tasks, expire_after, activity).await
        })
    }

    fn append_strike(
        &self,
        instruction: Instruction,
        compact_above: usize,
    ) -> BoxFuture<'_, Result<EntryId>> {
        Box::pin(async move { strikes::append(&self.shared, &instruction, compact_above).await })
    }

    fn strike_reader(&self) -> BoxFuture<'_, Result<Box<dyn StrikeReader>>> {
        Box::pin(async move {
            let reader = strikes::RedisStrikeReader::open(&self.shared).await?;
            Ok(Box::new(reader) as Box<dyn StrikeReader>)
        })
    }

    fn admit(&self, rule: AdmissionRule) -> BoxFuture<'_, Result<Option<Duration>>> {
        Box::pin(admission::admit(&self.shared, rule))
    }

    fn renew_slots(&self, held: Vec<(Slot, String)>, lease: Duration) -> BoxFuture<'_, Result<()>> {
        Box::pin(admission::renew(&self.shared, held, lease))
    }

    fn wake_waiters(&self, lease: Duration) -> BoxFuture<'_, Result<usize>> {
        Box::pin(admission::wake(&self.shared, lease))
    }

    fn dead_letters(&self) -> BoxFuture<'_, Result<Vec<DeadLetter>>> {
        Box::pin(lifecycle::dead_letters(&self.shared))
    }

    fn forget_dead_letter(&self, key: &str) -> BoxFuture<'_, Result<bool>> {
        let key = key.to_owned();
        Box::pin(async move { lifecycle::forget_dead_letter(&self.shared, &key).await })
    }

    fn try_lock(&self, name: &str, holder: &str, ttl: Duration) -> BoxFuture<'_, Result<bool>> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        Box::pin(async move { lifecycle::try_lock(&self.shared, &name, &holder, ttl).await })
    }

    fn leave(&self, worker: &str, tasks: &[&'static str]) -> BoxFuture<'_, Result<()>> {
        let worker = worker.to_owned();
        let tasks = tasks.to_vec();
        Box::pin(async move { observe::leave(&self.shared, &worker, &tasks).await })
    }

    fn unserved(&self) -> BoxFuture<'_, Result<Vec<Unserved>>> {
        Box::pin(unserved::list(&self.shared))
    }

    fn abandon_unserved(
        &self,
        task: &str,
        since: SystemTime,
        error: TaskError,
    ) -> BoxFuture<'_, Result<usize>> {
        let task = task.to_owned();
        Box::pin(async move { unserved::abandon(&self.shared, &task, since, &error).await })
    }

    fn workers(&self, task: Option<&str>) -> BoxFuture<'_, Result<Vec<ActiveWorker>>> {
        let task = task.map(str::to_owned);
        Box::pin(async move { observe::workers(&self.shared, task.as_deref()).await })
    }

    fn live(&self) -> BoxFuture<'_, Result<LiveTasks>> {
        Box::pin(observe::live(&self.shared))
    }

    fn page(
        &self,
        listing: Listing,
        after: Option<&str>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Page>> {
        let after = after.unwrap_or_default().to_owned();
        Box::pin(async move { observe::page(&self.shared, listing, &after, limit).await })
    }

    fn activity(&self, since: SystemTime) -> BoxFuture<'_, Result<Vec<ActivityInterval>>> {
        Box::pin(observe::activity(&self.shared, since))
    }

    fn live_counts(&self) -> BoxFuture<'_, Result<TaskCounts>> {
        Box::pin(observe::live_counts(&self.shared))
    }

    fn clear(&self) -> BoxFuture<'_, Result<usize>> {
        Box::pin(lifecycle::clear(&self.shared))
    }

    fn now(&self) -> BoxFuture<'_, Result<SystemTime>> {
        Box::pin(observe::now(&self.shared))
    }
}
