//! Declaring tasks: the [`Task`] trait the macro implements, the options it carries, the
//! registration every worker discovers, and [`Call`], a task call ready to schedule.

pub mod builtin;
mod call;
mod options;
mod registry;

pub use call::{Call, Due};
pub use options::{ConcurrencyLimit, RateLimit, RetryPolicy, Schedule, TaskOptions};
pub use registry::RunFuture;
pub(crate) use registry::TaskSet;
pub use registry::{TaskRegistration, registered};

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
    /// What a successful run returns (`()` stores no result).
    type Output: Serialize + DeserializeOwned + Send + 'static;
}
