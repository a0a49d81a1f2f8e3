//! The message one call of a task travels as, and when a call is due.

use std::time::{Duration, SystemTime};

/// One call of a task, as the stream carries it and its record keeps it.
///
/// Every copy of a call — queued, parked for later, delivered to a worker, or kept in its
/// execution record — carries these fields; `when` and `generation` are set by the store
/// when it places the call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The task key.
    pub key: String,
    /// The task's wire name.
    pub function: String,
    /// The arguments, a JSON object keyed by parameter name.
    pub args: String,
    /// When the call is (or was) due, by the store's clock.
    pub when: SystemTime,
    /// The attempt: 1 for the first run, 2 for the first retry, ...
    pub attempt: u32,
    /// The key's generation this copy belongs to; every schedule of the key increments
    /// it, and a copy older than its record's generation is never run.
    pub generation: u64,
    /// The W3C trace context of the producer, linking the run to the code that added it.
    pub traceparent: Option<String>,
}

impl Message {
    /// A message about to be placed: its due time and generation are the store's to set.
    pub(crate) fn unplaced(key: String, function: String, args: String, attempt: u32) -> Self {
        Self {
            key,
            function,
            args,
            when: SystemTime::UNIX_EPOCH,
            attempt,
            generation: 0,
            traceparent: None,
        }
    }
}

/// When a call is due.
///
/// Relative times are measured by the store's clock (the Redis server's, on Redis), so
/// that producers and workers with skewed clocks agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum When {
    /// As soon as a worker is free.
    #[default]
    Now,
    /// This long from now.
    After(Duration),
    /// At this instant.
    At(SystemTime),
    /// This long after the current run started, or at once if that has passed: a
    /// start-to-start cadence for the next run of a key (a new call is due at once).
    AfterStart(Duration),
}
