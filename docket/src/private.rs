//! Re-exports and small helpers for the code `#[docket::task]` generates. Not public API:
//! anything here may change in any release.

use std::fmt::Display;

use serde::{Serialize, de::DeserializeOwned};

pub use crate::execution::Execution;
pub use crate::inject::FromExecution;
pub use crate::model::{
    ConcurrencyLimit, RateLimit, RetryPolicy, Schedule, TaskError, TaskOptions,
};
pub use crate::task::Task;
pub use crate::task::registry::{RunFuture, TaskRegistration, registered};
pub use ::core::option::Option::{None, Some};
pub use ::inventory;
pub use ::serde;
pub use ::std::boxed::Box;
pub use ::std::time::Duration;

use crate::model::TaskErrorKind;

/// Deserializes a message's arguments into the task's argument struct.
///
/// # Errors
/// A bad-arguments [`TaskError`] naming the task and what did not fit.
pub fn arguments<T: DeserializeOwned>(execution: &Execution) -> Result<T, TaskError> {
    serde_json::from_str(execution.args()).map_err(|error| {
        let function = execution.function();
        let message = if error.is_syntax() || error.is_eof() {
            format!("the arguments of `{function}` (field `args`) are not valid JSON: {error}")
        } else {
            format!("the arguments of `{function}` do not fit its parameters: {error}")
        };
        TaskError::new(TaskErrorKind::BadArguments, message)
    })
}

/// Resolves one injected parameter, from the future
/// [`FromExecution::from_execution`] gave. (Taking the future rather than the type keeps
/// the `FromExecution` bound out of this signature, so that a type that cannot be
/// injected is reported once, at the parameter.)
///
/// # Errors
/// A dependency [`TaskError`] naming the parameter and the rejection.
pub async fn inject<T, R: Display>(
    resolving: impl Future<Output = Result<T, R>>,
    execution: &Execution,
    parameter: &'static str,
) -> Result<T, TaskError> {
    resolving.await.map_err(|rejection| {
        TaskError::new(
            TaskErrorKind::Dependency,
            format!(
                "cannot resolve parameter `{parameter}` of `{}`: {rejection}",
                execution.function()
            ),
        )
    })
}

/// Stores the value a task returned (`()` and `None` store nothing).
///
/// # Errors
/// When the value cannot be serialized.
pub fn output<T: Serialize>(value: &T) -> Result<Option<String>, TaskError> {
    let json = serde_json::to_string(value).map_err(|error| {
        TaskError::new(
            TaskErrorKind::Failed,
            format!("the task's result cannot be serialized: {error}"),
        )
    })?;
    Ok((json != "null").then_some(json))
}

/// Stores what a task returning `Result` returned.
///
/// # Errors
/// The task's own error, as a failed [`TaskError`] with its message (and its chain of
/// causes, for errors that print them with `{:#}`).
pub fn fallible<T: Serialize, E: Display>(
    result: Result<T, E>,
) -> Result<Option<String>, TaskError> {
    match result {
        Ok(value) => output(&value),
        Err(error) => Err(TaskError::new(TaskErrorKind::Failed, format!("{error:#}"))),
    }
}

/// The success type of a task returning `Result<T, E>` (or an alias such as
/// `anyhow::Result<T>`).
pub trait FallibleOutput {
    /// `T`.
    type Ok;
}

impl<T, E> FallibleOutput for Result<T, E> {
    type Ok = T;
}
