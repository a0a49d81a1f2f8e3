//! The bench's context, worker processes, and the throughput scenarios: ceilings (`L`,
//! `RTT1`), 1 enqueue, 2 drain (with 6, worker RSS), 5 Redis commands per task, 10
//! durable acknowledgements, 11 waiting at scale, 12 dashboard pages at scale, 13
//! payload sizes, 14 many workers, and admission and schedules at scale.

mod admission;
mod ceilings;
mod commands;
mod context;
mod dashboard;
mod drain;
mod durable;
mod enqueue;
mod fleet;
mod payload;
mod schedules;
mod waiting;

use std::time::Duration;

pub(crate) use admission::admission;
pub(crate) use ceilings::ceilings;
pub(crate) use commands::commands;
pub(crate) use context::{Bench, Ceilings, WorkerProcess, ttl_label};
pub(crate) use dashboard::dashboard;
pub(crate) use drain::drain;
pub(crate) use durable::durable;
pub(crate) use enqueue::enqueue;
pub(crate) use fleet::fleet;
pub(crate) use payload::payload;
pub(crate) use schedules::schedules;
pub(crate) use waiting::waiting;

/// `execution_ttl` of the state-tracking runs: docket's default.
pub(crate) const TRACKED: Duration = docket::DEFAULT_EXECUTION_TTL;

/// `execution_ttl` of the fire-and-forget runs.
pub(crate) const FIRE_AND_FORGET: Duration = Duration::ZERO;

/// The longest a worker child may take before the bench gives up on it.
const CHILD_TIMEOUT: Duration = Duration::from_mins(5);

/// A count as `u64`.
pub(crate) fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
