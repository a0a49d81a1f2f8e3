//! docket's data: what a call carries, when it is due, where its run is, what a task
//! declared, what watchers and operators see.
//!
//! Plain data that the rest of the crate builds on. It imports nothing else of the crate,
//! so that the backends, the client and the worker all point down at it and never at
//! each other.

mod dead_letter;
mod failure;
mod listing;
mod message;
mod options;
mod state;
mod strike;
mod strike_set;
mod strike_value;
mod worker;

pub use dead_letter::DeadLetter;
pub use failure::TaskError;
pub(crate) use failure::TaskErrorKind;
pub use listing::{Activity, ActivityInterval, Listing, Page, TaskCounts};
pub use message::{Message, When};
pub use options::{ConcurrencyLimit, RateLimit, RetryPolicy, Schedule, TaskOptions};
pub use state::{Disposition, Event, ExecutionRecord, ExecutionState, ProgressState};
pub use strike::{Operator, Strike};
pub(crate) use strike_set::{Instruction, StrikeSet};
pub(crate) use strike_value::{check_strike_value, parse_strike_value};
pub use worker::{ActiveWorker, WorkerInfo};
