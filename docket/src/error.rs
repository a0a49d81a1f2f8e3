//! docket's error type.

use std::time::Duration;

pub use crate::model::TaskError;

/// What can go wrong when talking to a docket.
///
/// Task failures are not errors of this kind until you ask for a result: a run that
/// fails is recorded as `FAILED`, and [`Execution::result`](crate::Execution::result)
/// then returns [`Error::TaskFailed`] carrying the task's [`TaskError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be understood.
    #[error("invalid docket URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The docket name is empty or contains characters that would break the key layout.
    #[error("invalid docket name `{0}`: use a non-empty name without `{{`, `}}` or whitespace")]
    InvalidName(String),
    /// A task key is empty or collides with one of docket's own keys.
    #[error("invalid task key `{key}`: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// A call's arguments are larger than the docket accepts
    /// ([`DocketBuilder::max_payload_size`](crate::DocketBuilder::max_payload_size)).
    #[error(
        "the arguments of `{function}` take {size} bytes, over this docket's limit of {limit} \
         bytes; raise it with DocketBuilder::max_payload_size or pass a reference to the data"
    )]
    PayloadTooLarge {
        /// The task's wire name.
        function: String,
        /// The serialized arguments' size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The task's arguments could not be serialized.
    #[error("cannot serialize the arguments of `{function}`: {source}")]
    Serialize {
        /// The task's wire name.
        function: String,
        /// The serializer's error.
        source: serde_json::Error,
    },
    /// A stored result could not be deserialized into the requested type.
    #[error("cannot deserialize the result of `{key}`: {source}")]
    Deserialize {
        /// The task key.
        key: String,
        /// The deserializer's error.
        source: serde_json::Error,
    },
    /// The server could not be reached or refused docket: unreachable, wrong
    /// password, an ACL that denies the docket's keys, or a failed TLS handshake.
    #[error("cannot connect to `{url}`: {reason}")]
    Connect {
        /// The URL, its password hidden.
        url: String,
        /// What went wrong.
        reason: String,
        /// Nothing answered (refused, timed out, reset): worth waiting for, unlike a
        /// server that answered and refused docket.
        unreachable: bool,
    },
    /// The server is too old, or not a server docket can use.
    #[error("`{url}` runs {server}, but docket needs Redis 6.2 or later (or Valkey)")]
    UnsupportedServer {
        /// The URL, its password hidden.
        url: String,
        /// The server's name and version as it reports them.
        server: String,
    },
    /// Redis refused to write: out of memory, unable to persist, short of replicas, or a
    /// read-only replica. Nothing of the call was written; the refusal is weather, not a
    /// fault of the call, and the same call succeeds once it clears. Workers stay up
    /// meanwhile, report the refusal on their health check, and resume by themselves.
    #[error(
        "Redis refused the write with {code} ({meaning}), so nothing of the call was written; \
         {advice}. Redis said: {message}",
        code = refusal.code(),
        meaning = refusal.meaning(),
        advice = refusal.advice()
    )]
    WriteRefused {
        /// Which refusal.
        refusal: WriteRefusal,
        /// What the server said.
        message: String,
    },
    /// With [`ConnectionOptions::wait_for_replicas`](crate::ConnectionOptions::wait_for_replicas),
    /// fewer replicas than asked confirmed a write in time. The write was made on the
    /// master and stands (an added call will run), but a failover before the replicas
    /// catch up could lose it.
    #[error(
        "the write was made, but only {confirmed} of the {wanted} replicas asked for \
         confirmed it within {timeout:?}; it stands unless the master fails before its \
         replicas catch up"
    )]
    NotReplicated {
        /// Replicas that confirmed the write.
        confirmed: usize,
        /// Replicas asked for.
        wanted: usize,
        /// How long docket waited for them.
        timeout: Duration,
    },
    /// Redis returned an error or the connection failed.
    #[error("redis error: {0}")]
    Redis(StoreError),
    /// Something in Redis did not have the shape docket writes.
    #[error("unexpected data in the docket: {0}")]
    Protocol(String),
    /// No execution record exists for this key (never scheduled, or expired after `execution_ttl`).
    #[error("no execution of `{0}` is known (it was never scheduled, or its record expired)")]
    NotFound(String),
    /// The docket runs with `execution_ttl = 0`: no states or results are kept.
    #[error(
        "results of `{0}` are not available: this docket runs fire-and-forget (`execution_ttl = 0`), which keeps no states or results"
    )]
    ResultsDisabled(String),
    /// The run ended `FAILED`.
    #[error("task `{key}` failed: {error}")]
    TaskFailed {
        /// The task key.
        key: String,
        /// The task's failure.
        error: TaskError,
    },
    /// The result store could not give the result back.
    #[error("could not read the result of `{key}` from the result store: {source}")]
    ResultStore {
        /// The task key.
        key: String,
        /// The store's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The run ended `CANCELLED`.
    #[error("task `{0}` was cancelled")]
    Cancelled(String),
    /// Waiting for a result took longer than allowed.
    #[error("timed out after {timeout:?} waiting for `{key}` to finish")]
    WaitTimeout {
        /// The task key.
        key: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// An option given to a builder is out of range.
    #[error("invalid option `{name}` = `{value}`: {reason}")]
    InvalidOption {
        /// The option's name.
        name: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The docket or worker was shut down.
    #[error("the docket is closed")]
    Closed,
}

impl Error {
    /// Whether nothing answered: the server is down, restarting or unreachable, so
    /// waiting and trying again may help (a worker started before Redis does this).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Connect { unreachable, .. } => *unreachable,
            Self::Redis(error) => error.unreachable,
            _ => false,
        }
    }
}

/// Why Redis refused a write ([`Error::WriteRefused`]), by the code it answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteRefusal {
    /// `OOM`: `maxmemory` is reached under `maxmemory-policy noeviction`.
    OutOfMemory,
    /// `MISCONF`: a background save failed and `stop-writes-on-bgsave-error` is on.
    PersistenceFailing,
    /// `NOREPLICAS`: fewer good replicas are connected than `min-replicas-to-write`.
    NotEnoughReplicas,
    /// `READONLY`: the server is a replica (the URL names one, or a failover demoted it).
    ReadOnlyReplica,
}

impl WriteRefusal {
    /// Every refusal, in the order of [`code`](Self::code)s Redis answers with.
    pub const ALL: [Self; 4] = [
        Self::OutOfMemory,
        Self::PersistenceFailing,
        Self::NotEnoughReplicas,
        Self::ReadOnlyReplica,
    ];

    /// The error code Redis answers with: `OOM`, `MISCONF`, `NOREPLICAS` or `READONLY`.
    pub fn code(self) -> &'static str {
        match self {
            Self::OutOfMemory => "OOM",
            Self::PersistenceFailing => "MISCONF",
            Self::NotEnoughReplicas => "NOREPLICAS",
            Self::ReadOnlyReplica => "READONLY",
        }
    }

    /// The refusal named by an error code, if the code is one.
    ///
    /// ```
    /// use docket::WriteRefusal;
    ///
    /// assert_eq!(WriteRefusal::from_code("MISCONF"), Some(WriteRefusal::PersistenceFailing));
    /// assert_eq!(WriteRefusal::from_code("ERR"), None);
    /// ```
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|refusal| refusal.code() == code)
    }

    /// What the refusal means, in a phrase.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::OutOfMemory => {
                "Redis is out of memory: its `maxmemory` is reached and `maxmemory-policy` is \
                 `noeviction`"
            }
            Self::PersistenceFailing => {
                "Redis cannot persist: a background save failed and \
                 `stop-writes-on-bgsave-error` is on"
            }
            Self::NotEnoughReplicas => {
                "too few replicas are connected for the server's `min-replicas-to-write`"
            }
            Self::ReadOnlyReplica => "the server is a read-only replica, not the master",
        }
    }

    /// What clears it.
    pub fn advice(self) -> &'static str {
        match self {
            Self::OutOfMemory => {
                "workers keep draining the queue, which frees memory, so retry later or raise \
                 `maxmemory`"
            }
            Self::PersistenceFailing => {
                "writes resume once a save succeeds: check the server's disk and its log"
            }
            Self::NotEnoughReplicas => "writes resume once enough replicas are back",
            Self::ReadOnlyReplica => {
                "point the URL at the master, or use `redis+sentinel://` to follow it through \
                 failovers"
            }
        }
    }
}

impl std::fmt::Display for WriteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.meaning())
    }
}

/// docket's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error the store (Redis) returned, or a failed connection to it.
///
/// Opaque by design, so that docket's API does not tie you to the Redis client it uses:
/// it prints the server's or the client's message, gives the underlying error as its
/// [`source`](std::error::Error::source), and says whether it means the server is out of
/// reach ([`Error::is_unreachable`]).
#[derive(Debug)]
pub struct StoreError {
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
    unreachable: bool,
}

impl StoreError {
    /// Wraps the store client's error; `unreachable` when nothing answered (refused, timed
    /// out, cut off, or a server still loading its data).
    pub(crate) fn new(
        source: impl std::error::Error + Send + Sync + 'static,
        unreachable: bool,
    ) -> Self {
        Self {
            source: Box::new(source),
            unreachable,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}
