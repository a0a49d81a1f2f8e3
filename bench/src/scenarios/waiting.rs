//! Scenario 11, waiting at scale: one producer handle, in a process of its own, awaits
//! `result()` of every task it added (100,000) while a worker drains them. What it
//! costs the producer (memory per waiter, Redis connections) and how long the last
//! result takes, next to the same drain with nobody waiting, in the same run.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;

use super::context::{Bench, WorkerProcess};
use super::{TRACKED, count_u64};
use crate::child::{Mode, WorkerArgs, add_noops};
use crate::report::{Figure, Outcome};
use crate::stats::{Summary, count, count64};
use crate::workers::WAITER_BIN;

/// Worker concurrency, as in the drain scenario.
const CONCURRENCY: usize = 50;

/// What one run measured.
struct Waited {
    /// The waiting handle's connections to Redis.
    connections: f64,
    /// The producer's heap growth per waiter, subscribed and waiting.
    bytes_per_waiter: f64,
    /// The same in resident memory, with what the allocator keeps after the reads.
    rss_per_waiter: f64,
    /// From the worker's start to the last waiter's result.
    to_last_result: Duration,
    /// The same drain with nobody waiting.
    unwatched: Duration,
}

/// Scenario 11: 100,000 concurrent `result()` waiters on one handle.
pub(crate) async fn waiting(bench: &mut Bench) -> Result<Outcome> {
    let waiters = bench.n(100_000);
    let mut runs = Vec::new();
    for _ in 0..bench.runs {
        let unwatched = drained_alone(bench, waiters).await?;
        runs.push(waited_on(bench, waiters, unwatched).await?);
    }
    bench.clean().await?;
    let scenario = "11 waiting";
    let of = |figure: fn(&Waited) -> f64| Summary::of(&runs.iter().map(figure).collect::<Vec<_>>());
    let figures = vec![
        Figure::new(
            scenario,
            "waiting.connections",
            format!("Redis connections of a handle with {waiters} waiters"),
            "conns",
            of(|run| run.connections),
        )
        .at_most(3.0, "≤ 3 (commands, strikes, one subscriber)"),
        Figure::new(
            scenario,
            "waiting.bytes_per_waiter",
            "producer heap per waiter, subscribed and waiting",
            "B",
            of(|run| run.bytes_per_waiter),
        ),
        Figure::new(
            scenario,
            "waiting.rss_per_waiter",
            "producer RSS growth per waiter (with the allocator's keep of their first reads)",
            "B",
            of(|run| run.rss_per_waiter),
        ),
        Figure::new(
            scenario,
            "waiting.last_result",
            format!("time to the last of {waiters} results, worker concurrency {CONCURRENCY}"),
            "ms",
            of(|run| run.to_last_result.as_secs_f64() * 1e3),
        ),
        Figure::new(
            scenario,
            "waiting.last_result.ratio",
            "time to the last result ÷ the same drain with nobody waiting",
            "×",
            of(|run| run.to_last_result.as_secs_f64() / run.unwatched.as_secs_f64()),
        ),
    ];
    let details = json!({
        "waiters": waiters,
        "runs": runs.iter().map(|run| json!({
            "connections": run.connections,
            "bytes_per_waiter": run.bytes_per_waiter,
            "rss_per_waiter": run.rss_per_waiter,
            "to_last_result_ms": run.to_last_result.as_secs_f64() * 1e3,
            "unwatched_ms": run.unwatched.as_secs_f64() * 1e3,
        })).collect::<Vec<_>>(),
    });
    Ok(Outcome { figures, details })
}

/// Adds `tasks` no-ops and times a worker draining them, with nobody waiting.
async fn drained_alone(bench: &mut Bench, tasks: usize) -> Result<Duration> {
    bench.clean().await?;
    let name = bench.fresh_name("unwatched");
    let producer = bench.producer(&name, TRACKED).await?;
    add_noops(&producer, tasks, 1000).await?;
    drop(producer);
    let worker = bench
        .spawn_worker(Mode::Drain, &name, CONCURRENCY, TRACKED)
        .await?;
    let (report, wall) = worker.finish().await?;
    if report.starts != count_u64(tasks) {
        bail!("the worker started {} tasks of {tasks}", report.starts);
    }
    Ok(wall)
}

/// A producer process adds `tasks` no-ops and awaits each one's result; once all are
/// subscribed, a worker drains them, timed to the last result.
async fn waited_on(bench: &mut Bench, tasks: usize, unwatched: Duration) -> Result<Waited> {
    bench.clean().await?;
    let name = bench.fresh_name("waiting");
    let args = WorkerArgs {
        mode: Mode::Wait,
        url: bench.target.url.clone(),
        name: name.clone(),
        concurrency: 0,
        ttl_ms: u64::try_from(TRACKED.as_millis())?,
        tasks,
    };
    let waiter = bench.exe.with_file_name(WAITER_BIN);
    if !waiter.exists() {
        bail!(
            "no {} beside the worker program (with --worker-exe, build it too: cargo build \
             --release -p docket-bench --bin {WAITER_BIN})",
            waiter.display()
        );
    }
    let producer = WorkerProcess::spawn(&waiter, &args).await?;
    let worker = bench
        .spawn_worker(Mode::Serve, &name, CONCURRENCY, TRACKED)
        .await?;
    // Closing its standard input starts the producer's clock, as the worker's `ready`
    // starts the drain's.
    let (heard, _) = producer.finish().await?;
    let (drained, _) = worker.finish().await?;
    if drained.starts != count_u64(tasks) {
        bail!("the worker started {} tasks of {tasks}", drained.starts);
    }
    Ok(Waited {
        connections: count64(heard.connections),
        bytes_per_waiter: count64(heard.waiters_heap_bytes) / count(tasks),
        rss_per_waiter: count64(heard.waiters_rss_kib) * 1024.0 / count(tasks),
        to_last_result: Duration::from_secs_f64(heard.run_ms / 1e3),
        unwatched,
    })
}
