//! docket's error type.

use std::time::Duration;

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
    /// Redis is out of memory (`maxmemory` reached under `maxmemory-policy noeviction`)
    /// and refused to take new work; nothing of the call was written. Workers keep
    /// running and finishing tasks meanwhile, which frees memory.
    #[error(
        "Redis is out of memory (its `maxmemory` is reached and `maxmemory-policy` is \
         `noeviction`): docket `{docket}` refused the call and wrote nothing; workers keep \
         draining the queue, which frees memory, so retry later or raise `maxmemory`"
    )]
    OutOfMemory {
        /// The docket's name.
        docket: String,
    },
    /// Redis returned an error or the connection failed.
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
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
            Self::Redis(error) => crate::backend::redis_unreachable(error),
            _ => false,
        }
    }
}

/// docket's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a task run failed: the task's own error, a panic, a timeout, or an argument or
/// dependency that could not be resolved.
///
/// Opaque by design: ask it what it is with the predicates.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskError {
    kind: TaskErrorKind,
    message: String,
}

/// The kinds of task failure (internal; see the predicates on [`TaskError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TaskErrorKind {
    /// The task returned an error.
    Failed,
    /// The task panicked.
    Panicked,
    /// The task ran past its timeout.
    TimedOut,
    /// The arguments in the message did not fit the task.
    BadArguments,
    /// An injected parameter could not be resolved.
    Dependency,
    /// The worker does not know the function.
    UnknownTask,
    /// Admission refused the run (a strike, a cooldown, a rate limit): it ended
    /// CANCELLED, and this says why.
    Refused,
}

impl TaskError {
    pub(crate) fn new(kind: TaskErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The error message, as the task (or docket) reported it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        self.kind == TaskErrorKind::Panicked
    }

    /// The task ran longer than its timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == TaskErrorKind::TimedOut
    }

    /// The message's arguments did not deserialize into the task's argument struct.
    pub fn is_bad_arguments(&self) -> bool {
        self.kind == TaskErrorKind::BadArguments
    }

    /// An injected parameter could not be resolved.
    pub fn is_dependency(&self) -> bool {
        self.kind == TaskErrorKind::Dependency
    }

    /// The kind, as a short name (`failed`, `panicked`, `timed_out`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            TaskErrorKind::Failed => "failed",
            TaskErrorKind::Panicked => "panicked",
            TaskErrorKind::TimedOut => "timed_out",
            TaskErrorKind::BadArguments => "bad_arguments",
            TaskErrorKind::Dependency => "dependency",
            TaskErrorKind::UnknownTask => "unknown_task",
            TaskErrorKind::Refused => "refused",
        }
    }

    /// Admission refused the run (a strike, a cooldown, a dropping rate limit); the
    /// record ended CANCELLED with this as its reason.
    pub fn is_refused(&self) -> bool {
        self.kind == TaskErrorKind::Refused
    }

    /// No worker-side task is registered under the message's function name.
    pub fn is_unknown_task(&self) -> bool {
        self.kind == TaskErrorKind::UnknownTask
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.message.clone())
    }

    pub(crate) fn from_json(text: &str) -> Self {
        serde_json::from_str(text)
            .unwrap_or_else(|_| Self::new(TaskErrorKind::Failed, text.to_owned()))
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}
