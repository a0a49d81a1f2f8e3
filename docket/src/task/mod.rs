//! Declaring tasks: the [`Task`] trait the macro implements, the options it carries, and
//! [`Call`], a task call ready to schedule.

mod call;
pub(crate) mod registry;

pub use crate::model::{ConcurrencyLimit, RateLimit, RetryPolicy, Schedule, TaskOptions};
pub use call::Call;

use serde::{Serialize, de::DeserializeOwned};

/// A task's argument struct: what `#[docket::task]` generates for each function.
///
/// You do not implement this by hand; the attribute does. The struct is the typed call:
/// `docket.add(SendEmail::new(to, subject))`.
pub trait Task: Serialize + Send + 'static {
    /// The task's wire name (the function name unless `name = "..."` is given).
    const NAME: &'static str;
    /// The options declared in the attribute.
    const OPTIONS: TaskOptions;
    /// What a successful run returns (`()` stores no result), and so what
    /// [`Execution::result`](crate::Execution::result) gives for a call of this task.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}
