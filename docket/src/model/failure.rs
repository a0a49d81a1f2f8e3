//! [`TaskError`]: why a run failed, as its record keeps it.

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
    /// No worker served the call's task within the grace period.
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

    /// No worker served the call's task: it waited for one longer than the grace period
    /// (`WorkerBuilder::unserved_grace`) and was dead-lettered.
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
