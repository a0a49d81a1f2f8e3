//! What docket-bench shares with its worker process, `docket-bench-worker`: the
//! benchmark's tasks, the worker role and its report, and the statistics helpers.

pub mod child;
pub mod stats;
