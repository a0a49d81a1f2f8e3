//! A task call with its scheduling choices, before it reaches the backend.

use std::time::{Duration, SystemTime};

use super::Task;
use crate::error::{Error, Result};
use crate::model::When;

/// A typed call turned into its wire form, with an optional key and due time.
///
/// Every [`Task`] converts into a `Call`, which is what
/// [`Docket::add_many`](crate::Docket::add_many) takes, so calls of different tasks can
/// go in one batch:
///
/// ```
/// # #[docket::task] async fn greet(name: String) {}
/// # #[docket::task] async fn tidy() {}
/// use std::time::Duration;
/// use docket::Call;
///
/// let calls = [
///     Call::from(Greet::new("ada".into())).key("greet-ada"),
///     Call::from(Tidy::new()).after(Duration::from_secs(60)),
/// ];
/// # let _ = calls;
/// ```
#[derive(Debug)]
pub struct Call {
    pub(crate) function: &'static str,
    pub(crate) args: std::result::Result<String, String>,
    pub(crate) key: Option<String>,
    pub(crate) due: When,
    /// The task's `debounce` settle time.
    pub(crate) debounce: Option<Duration>,
}

impl Call {
    /// Sets the task key (default: a new `UUIDv7`).
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Runs the call at `when` (a [`SystemTime`] or a `chrono::DateTime`).
    #[must_use]
    pub fn at(mut self, when: impl Into<SystemTime>) -> Self {
        self.due = When::At(when.into());
        self
    }

    /// Runs the call `delay` from now.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.due = When::After(delay);
        self
    }

    /// The task's wire name.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The arguments as a JSON object, or the serialization error.
    pub(crate) fn args_json(&self) -> Result<&str> {
        self.args.as_deref().map_err(|message| Error::Serialize {
            function: self.function.to_owned(),
            source: serde::ser::Error::custom(message),
        })
    }
}

impl<T: Task> From<T> for Call {
    fn from(task: T) -> Self {
        Self {
            function: T::NAME,
            args: serde_json::to_string(&task).map_err(|e| e.to_string()),
            key: None,
            due: When::Now,
            debounce: T::OPTIONS.debounce,
        }
    }
}
