//! Injected parameters: values a task receives from its run rather than from the caller.
//!
//! A parameter whose type implements [`FromExecution`] is resolved per run; every other
//! parameter is data carried in the call. Write your own injectables by implementing
//! the trait:
//!
//! ```
//! use docket::{Execution, FromExecution};
//!
//! /// The tenant a task runs for, taken from its key (`tenant/job`).
//! struct Tenant(String);
//!
//! impl FromExecution for Tenant {
//!     type Rejection = String;
//!
//!     async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
//!         match execution.key().split_once('/') {
//!             Some((tenant, _)) => Ok(Tenant(tenant.to_owned())),
//!             None => Err(format!("key `{}` names no tenant", execution.key())),
//!         }
//!     }
//! }
//!
//! #[docket::task]
//! async fn rebuild_index(shard: u32, #[inject] tenant: Tenant) {
//!     let _ = (shard, tenant.0);
//! }
//! ```

mod builtins;
mod depends;
mod schedule;
mod trace;

use std::future::Future;

pub use builtins::{Progress, Retry, TaskKey};
pub use depends::{Depends, FromWorker, Shared};
pub(crate) use depends::{WorkerContext, WorkerValues};
pub use schedule::{ForcedRetry, Perpetual, Timeout};
pub(crate) use trace::RunSpan;
pub use trace::{TaskFields, TaskLogger};

pub use crate::model::WorkerInfo;

use crate::client::Docket;
use crate::execution::Execution;

/// A type a task can take as a parameter, resolved from the running [`Execution`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a docket task",
    label = "this parameter is treated as injected, but `{Self}` does not implement `docket::FromExecution`",
    note = "implement `docket::FromExecution` for `{Self}`, or mark the parameter `#[arg]` to pass it as data"
)]
pub trait FromExecution: Sized + Send + 'static {
    /// Why the value could not be resolved; it fails the run, naming the parameter.
    type Rejection: std::fmt::Display + Send;

    /// Resolves the value for one run.
    fn from_execution(
        execution: &Execution,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send;
}

impl FromExecution for Execution {
    type Rejection = std::convert::Infallible;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        Ok(execution.clone())
    }
}

impl FromExecution for Docket {
    type Rejection = &'static str;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        WorkerContext::of(execution)
            .map(|context| context.docket.clone())
            .ok_or("the execution is not running in a worker")
    }
}

impl FromExecution for WorkerInfo {
    type Rejection = &'static str;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        execution
            .worker()
            .cloned()
            .ok_or("the execution is not running in a worker")
    }
}
