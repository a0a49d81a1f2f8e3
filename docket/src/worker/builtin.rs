//! The built-in tasks every worker runs: `trace`, `fail` and `sleep`.
//!
//! They let an operator check a fleet end to end without deploying anything:
//! `docket tasks trace "hello"` is logged by whichever worker picks it up.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! use docket::worker::builtin::Trace;
//!
//! let docket = docket::Docket::connect("doc-builtin", "memory://doc-builtin").await?;
//! let execution = docket.add(Trace::new("hello".into())).await?;
//! docket::Worker::builder(docket).build()?.run_until_finished().await?;
//! assert_eq!(execution.state().await?, docket::ExecutionState::Completed);
//! # Ok(()) }
//! ```

use std::time::Duration;

use crate::inject::{TaskKey, WorkerInfo};

/// The wire names of the built-in tasks.
pub const NAMES: [&str; 3] = ["trace", "fail", "sleep"];

/// Logs `message` at INFO on the worker that runs it.
#[docket::task(name = "trace")]
pub async fn trace(message: String, key: TaskKey, worker: WorkerInfo) {
    tracing::info!(key = %key.as_str(), worker = %worker.name(), "trace: {message}");
}

/// Fails with `message`, to check failure handling and alerting.
///
/// # Errors
/// Always: `message`.
#[docket::task(name = "fail")]
pub async fn fail(message: String) -> Result<(), String> {
    Err(message)
}

/// Sleeps `seconds` (fractions allowed), to check draining and redelivery.
#[docket::task(name = "sleep")]
pub async fn sleep(seconds: f64) {
    tokio::time::sleep(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)).await;
}
