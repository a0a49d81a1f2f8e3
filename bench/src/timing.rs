//! Scenarios 3, add → start latency, and 4, scheduled lateness, against an idle worker child.
//!
//! The task (`bench_stamp`) returns the wall-clock time it started as its result; the
//! producer notes the time around each `add`, and reads the results once every task ran.
//! Producer, worker and Redis share one machine, hence one clock.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde_json::json;

use crate::child::{Mode, Stamp, unix_micros};
use crate::report::{Figure, Outcome};
use crate::scenarios::{Bench, TRACKED};
use crate::stats::{Summary, count64, percentile};

/// The pause between two adds, so that the worker is idle when each arrives.
const GAP: Duration = Duration::from_millis(2);
/// How far ahead the scheduled tasks are due.
const AHEAD: Duration = Duration::from_secs(1);

/// `to − from` in milliseconds, from microsecond timestamps (negative if `to` is earlier).
fn millis_between(from: u64, to: u64) -> f64 {
    if to >= from {
        count64(to - from) / 1e3
    } else {
        -(count64(from - to) / 1e3)
    }
}

/// Samples of one run: per task, milliseconds from the reference time to the start.
struct Samples {
    /// From just before `add` was called (latency), or from the due time (lateness).
    primary: Vec<f64>,
    /// From `add`'s return (latency only).
    secondary: Vec<f64>,
}

/// Adds `tasks` stamps one at a time, `GAP` apart (due `delay` ahead when given), to an
/// idle worker child, then reads when each started.
async fn stamp_run(bench: &mut Bench, delay: Option<Duration>) -> Result<Samples> {
    bench.clean().await?;
    let tasks = bench.n(1000);
    let name = bench.fresh_name(if delay.is_some() { "late" } else { "latency" });
    let worker = bench.spawn_worker(Mode::Serve, &name, 10, TRACKED).await?;
    let producer = bench.producer(&name, TRACKED).await?;
    let mut added = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let called = unix_micros(SystemTime::now());
        let execution = match delay {
            Some(delay) => producer.add(Stamp::new()).after(delay).await?,
            None => producer.add(Stamp::new()).await?,
        };
        let returned = unix_micros(SystemTime::now());
        added.push((called, returned, execution));
        tokio::time::sleep(GAP).await;
    }
    let mut samples = Samples {
        primary: Vec::with_capacity(tasks),
        secondary: Vec::with_capacity(tasks),
    };
    for (called, returned, execution) in added {
        let started: u64 = execution.result_timeout(Duration::from_secs(30)).await?;
        if delay.is_some() {
            let due = unix_micros(execution.when());
            samples.primary.push(millis_between(due, started));
        } else {
            samples.primary.push(millis_between(called, started));
            samples.secondary.push(millis_between(returned, started));
        }
    }
    drop(producer);
    worker.finish().await?;
    Ok(samples)
}

/// p50 and p99 of each run's samples, summarized over runs.
fn percentiles(runs: &[Vec<f64>]) -> (Summary, Summary) {
    let p50: Vec<f64> = runs.iter().map(|s| percentile(s, 50)).collect();
    let p99: Vec<f64> = runs.iter().map(|s| percentile(s, 99)).collect();
    (Summary::of(&p50), Summary::of(&p99))
}

/// Scenario 3, add → start latency: an idle worker child (concurrency 10, state tracking), tasks
/// added one at a time 2 ms apart; the task returns its start time.
pub(crate) async fn latency(bench: &mut Bench) -> Result<Outcome> {
    let (mut from_call, mut from_return) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        let samples = stamp_run(bench, None).await?;
        from_call.push(samples.primary);
        from_return.push(samples.secondary);
    }
    bench.clean().await?;
    let (p50, p99) = percentiles(&from_call);
    let (return_p50, return_p99) = percentiles(&from_return);
    let tasks = bench.n(1000);
    let max: Vec<f64> = from_call.iter().map(|s| percentile(s, 100)).collect();
    let scenario = "3 latency";
    let figures = vec![
        Figure::new(
            scenario,
            "latency.p50",
            "add → start p50 (from the add call)",
            "ms",
            p50,
        )
        .at_most(0.4, "≤ 0.4 ms"),
        Figure::new(
            scenario,
            "latency.p99",
            "add → start p99 (from the add call)",
            "ms",
            p99,
        )
        .at_most(1.0, "≤ 1 ms"),
    ];
    let details = json!({
        "tasks": tasks,
        "gap_ms": 2,
        "worker": "an idle child process (`docket-bench-worker --mode serve`), concurrency 10, \
                   state tracking; run_forever until its standard input closes",
        "measured": "task start (SystemTime::now() in the task, returned as its result) minus \
                     SystemTime::now() just before `add` was called; also minus the time `add` \
                     returned",
        "from_add_return_p50": return_p50,
        "from_add_return_p99": return_p99,
        "from_add_call_max": Summary::of(&max),
    });
    Ok(Outcome { figures, details })
}

/// Scenario 4, scheduled lateness: tasks due 1 s after their add, 2 ms apart, default worker
/// settings (`scheduling_resolution` 250 ms); start − due.
pub(crate) async fn lateness(bench: &mut Bench) -> Result<Outcome> {
    let mut runs = Vec::new();
    for _ in 0..bench.runs {
        runs.push(stamp_run(bench, Some(AHEAD)).await?.primary);
    }
    bench.clean().await?;
    let (p50, p99) = percentiles(&runs);
    let max: Vec<f64> = runs.iter().map(|s| percentile(s, 100)).collect();
    let min: Vec<f64> = runs
        .iter()
        .map(|s| s.iter().copied().fold(f64::INFINITY, f64::min))
        .collect();
    let scenario = "4 lateness";
    let figures = vec![
        Figure::new(
            scenario,
            "lateness.p50",
            "scheduled start − due p50",
            "ms",
            p50,
        ),
        Figure::new(
            scenario,
            "lateness.p99",
            "scheduled start − due p99",
            "ms",
            p99,
        )
        .at_most(10.0, "≤ 10 ms"),
    ];
    let details = json!({
        "tasks": bench.n(1000),
        "due": "add(..).after(1 s), adds 2 ms apart; due = Execution::when() (the server \
                computes it; whole milliseconds, so lateness reads up to 1 ms high)",
        "worker": "an idle child process, concurrency 10, default scheduling_resolution",
        "max": Summary::of(&max),
        "min": Summary::of(&min),
    });
    Ok(Outcome { figures, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_differences() {
        assert!((millis_between(1_000, 3_500) - 2.5).abs() < 1e-12);
        assert!((millis_between(3_500, 1_000) + 2.5).abs() < 1e-12);
    }
}
