#![doc = include_str!("../README.md")]

extern crate self as docket;

mod backend;
pub mod behaviors;
pub mod cli;
mod client;
#[cfg(feature = "dashboard")]
pub mod dashboard;
mod error;
mod execution;
pub mod inject;
#[cfg(test)]
mod layers;
mod model;
mod observe;
mod results;

/// Metrics for applications that serve them from their own HTTP server (a worker
/// started by `docket worker --metrics-port` serves them itself).
pub mod observability {
    pub use crate::observe::prometheus_text;
}
pub mod strikes;
pub mod task;
pub mod testing;
pub mod worker;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use crate::backend::{BoxError, ConnectionOptions, Credentials};
pub use crate::client::{
    Add, DEFAULT_EXECUTION_TTL, DEFAULT_MAX_DELIVERIES, DEFAULT_MAX_PAYLOAD_SIZE, Docket,
    DocketBuilder, Snapshot,
};
pub use crate::error::{Error, Result, StoreError, WriteRefusal};
pub use crate::execution::Execution;
pub use crate::model::{
    ActiveWorker, Activity, ActivityInterval, DeadLetter, Disposition, Event, ExecutionRecord,
    ExecutionState, Listing, Message, Page, ProgressState, TaskCounts, TaskError, When,
};
pub use inject::{
    Depends, FromExecution, FromWorker, Perpetual, Progress, Retry, Shared, TaskKey, TaskLogger,
    Timeout, WorkerInfo,
};
pub use results::{MemoryResultStore, RedisResultStore, ResultStore};
pub use task::{Call, Task};
pub use worker::{Worker, WorkerBuilder, WorkerStatus};

pub use cli::{run_worker, run_worker_with};

/// Declares a docket task. See the [crate documentation](crate) for a tour.
#[doc(inline)]
pub use docket_macros::task;

/// The production guide's code blocks are compiled with the crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/production.md")]
struct ProductionGuide;
