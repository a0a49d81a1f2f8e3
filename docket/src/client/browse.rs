//! Reading a docket a page at a time, and acting on one key by name: what operators'
//! tools (the dashboard, scripts) need beside the typed API.

use std::time::SystemTime;

use super::Docket;
use crate::backend::NewTask;
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::model::{ActivityInterval, Disposition, Listing, Message, Page, TaskCounts, When};
use crate::observe::{metrics, trace};

impl Docket {
    /// One page of live tasks: at most `limit` of `listing`, starting after the cursor
    /// `after` (the [`Page::next`] of the page before, or `None` for the first). A
    /// page costs the same however many tasks the docket holds.
    ///
    /// ```
    /// # #[docket::task] async fn send_welcome(user_id: u64) {}
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> docket::Result<()> {
    /// use std::time::Duration;
    /// use docket::Listing;
    ///
    /// let docket = docket::Docket::connect("pages", "memory://doc-pages").await?;
    /// for user in 0..5 {
    ///     docket.add(SendWelcome::new(user)).after(Duration::from_secs(60)).await?;
    /// }
    /// let first = docket.page(Listing::Scheduled, None, 3).await?;
    /// assert_eq!(first.records.len(), 3);
    /// let rest = docket.page(Listing::Scheduled, first.next.as_deref(), 3).await?;
    /// assert_eq!(rest.records.len(), 2);
    /// assert!(rest.next.is_none());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn page(&self, listing: Listing, after: Option<&str>, limit: usize) -> Result<Page> {
        self.backend().page(listing, after, limit).await
    }

    /// How many tasks are queued, scheduled and running, read at once.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn counts(&self) -> Result<TaskCounts> {
        self.backend().live_counts().await
    }

    /// What the docket's workers reported since `since` (at most the last 15
    /// minutes): the runs that ended in each 5-second interval in which any did,
    /// oldest first. Workers report with their heartbeats.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn activity(&self, since: SystemTime) -> Result<Vec<ActivityInterval>> {
        self.backend().activity(since).await
    }

    /// The docket's clock: the Redis server's, or this process's on `memory://`.
    ///
    /// # Errors
    /// When the backend cannot be reached.
    pub async fn now(&self) -> Result<SystemTime> {
        self.backend().now().await
    }

    /// Schedules `key`'s call again, due at `due`: with new arguments (a JSON object
    /// keyed by parameter name) or its own. Whatever is live under the key is
    /// replaced; a key whose run ended runs again as attempt 1. This is "run now",
    /// "retry" and "replace the arguments" for a key known only by name. Returns
    /// `None` when no record of the key is kept.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming arguments that are not a JSON object;
    /// [`Error::PayloadTooLarge`] over the docket's payload limit; otherwise a backend
    /// error. A call a strike blocks is answered [`Disposition::Struck`].
    pub async fn run_again(
        &self,
        key: &str,
        args: Option<&str>,
        due: When,
    ) -> Result<Option<Execution>> {
        let Some(record) = self.backend().record(key).await? else {
            return Ok(None);
        };
        let args = match args {
            Some(args) => checked_args(args)?,
            None => record.message.args,
        };
        if args.len() > self.inner.max_payload_size {
            return Err(Error::PayloadTooLarge {
                function: record.message.function,
                size: args.len(),
                limit: self.inner.max_payload_size,
            });
        }
        let function = record.message.function;
        let mut message = Message::unplaced(key.to_owned(), function.clone(), args, 1);
        message.traceparent = trace::current_traceparent();
        let task = NewTask {
            message,
            due,
            replace: true,
            fresh: false,
        };
        if self
            .blocking_strike(&function, &task.message.args)
            .is_some()
        {
            metrics::count(
                "docket_tasks_stricken",
                metrics::labels(self.name(), None, Some(&function)),
                1,
            );
            let refused = crate::backend::ScheduleOutcome {
                disposition: Disposition::Struck,
                generation: 0,
                when: SystemTime::now(),
            };
            return Ok(Some(self.placed(task, &refused)));
        }
        let placed = self.schedule_one(task).await?;
        for counter in ["docket_tasks_replaced", "docket_tasks_scheduled"] {
            metrics::count(
                counter,
                metrics::labels(self.name(), None, Some(&function)),
                1,
            );
        }
        Ok(Some(placed))
    }
}

/// Arguments given as text: a JSON object, compacted.
fn checked_args(args: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidOption {
        name: "arguments",
        value: args.to_owned(),
        reason,
    };
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value.to_string()),
        Ok(other) => Err(invalid(format!(
            "arguments are a JSON object keyed by parameter name, not {}",
            json_kind(&other)
        ))),
        Err(error) => Err(invalid(format!("not JSON: {error}"))),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_a_json_object_and_the_error_names_them() {
        assert_eq!(checked_args(r#"{ "a": 1 }"#).unwrap(), r#"{"a":1}"#);
        for (bad, says) in [("[1]", "an array"), ("7", "a number"), ("{a", "not JSON")] {
            let error = checked_args(bad).unwrap_err().to_string();
            assert!(error.contains(bad) && error.contains(says), "{error}");
        }
    }
}
