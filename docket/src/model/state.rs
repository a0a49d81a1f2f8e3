//! The states of an execution, the outcome of scheduling, and the events watchers see.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Message, TaskError};

/// Where an execution is in its life.
///
/// SCHEDULED (parked for later) → QUEUED (ready in the stream) → RUNNING →
/// COMPLETED | FAILED | CANCELLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionState {
    /// Waiting for its due time.
    Scheduled,
    /// Due, waiting for a worker.
    Queued,
    /// A worker is running it.
    Running,
    /// It ran and succeeded.
    Completed,
    /// It ran and failed (after its last attempt).
    Failed,
    /// It was cancelled before or while running.
    Cancelled,
}

impl ExecutionState {
    /// The state is final: the key may be reused.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The wire spelling, as stored in Redis.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "SCHEDULED" => Self::Scheduled,
            "QUEUED" => Self::Queued,
            "RUNNING" => Self::Running,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            other => return Err(format!("unknown execution state `{other}`")),
        })
    }
}

/// What `add` / `replace` did with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Disposition {
    /// The call was scheduled (queued now or parked for later).
    Scheduled,
    /// `add` found the key scheduled, queued or running: nothing was written.
    AlreadyScheduled,
    /// A strike blocks the call: nothing was written.
    Struck,
    /// `replace` found a live copy of the key and superseded it with this call: the old
    /// copy will never run (a running one has its completion fenced off).
    Superseded,
}

impl Disposition {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "SCHEDULED",
            Self::AlreadyScheduled => "ALREADY_SCHEDULED",
            Self::Struck => "STRUCK",
            Self::Superseded => "SUPERSEDED",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Disposition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "SCHEDULED" => Self::Scheduled,
            "ALREADY_SCHEDULED" => Self::AlreadyScheduled,
            "STRUCK" => Self::Struck,
            "SUPERSEDED" => Self::Superseded,
            other => return Err(format!("unknown disposition `{other}`")),
        })
    }
}

/// A task's progress as reported through [`Progress`](crate::Progress).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressState {
    /// Units done so far.
    pub current: u64,
    /// Units in total, when the task said.
    pub total: Option<u64>,
    /// The last message the task set.
    pub message: Option<String>,
}

/// A change a watcher of one execution sees (see [`Execution::subscribe`](crate::Execution::subscribe)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The execution changed state.
    State {
        /// The new state.
        state: ExecutionState,
        /// The generation the change belongs to.
        generation: u64,
        /// The worker running it, while running.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<String>,
        /// The failure, when the state is FAILED.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TaskError>,
    },
    /// The running task reported progress.
    Progress(ProgressState),
}

/// The stored record of an execution (`{docket}:runs:{key}`): the message of the key's
/// current generation, and where its run is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExecutionRecord {
    /// The call: key, task, arguments, due time, attempt and generation.
    pub message: Message,
    /// The current state.
    pub state: ExecutionState,
    /// The worker that ran or runs it.
    pub worker: Option<String>,
    /// When the current or last run started.
    pub started_at: Option<SystemTime>,
    /// When the run ended.
    pub completed_at: Option<SystemTime>,
    /// The failure, for FAILED.
    pub error: Option<TaskError>,
    /// Whether a result is stored for this generation.
    pub has_result: bool,
    /// How long the record and result are kept once the run ends: its producer's
    /// `execution_ttl` (`None` for a record written before calls carried it).
    pub(crate) ttl: Option<Duration>,
}

impl ExecutionRecord {
    /// The state event this record tells a watcher.
    pub(crate) fn event(&self) -> Event {
        Event::State {
            state: self.state,
            generation: self.message.generation,
            worker: self.worker.clone(),
            error: self.error.clone(),
        }
    }
}
