//! Scenario 13, payload size: a worker child drains N echo tasks at concurrency 50, with
//! state tracking, whose arguments and results are 1 KB and 16 KB strings; beside
//! `L_d`, the whole-cycle script of `L` carrying a d-byte field, measured in the same
//! run on the same server.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use super::TRACKED;
use super::context::Bench;
use super::drain::{Drained, drain_queued};
use crate::child::add_echoes;
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, count, count64};

/// The scenario's name in the table.
const SCENARIO: &str = "13 payload";

/// The payload sizes measured, in bytes.
const SIZES: [usize; 2] = [1024, 16 * 1024];

/// The worker's concurrency.
const CONCURRENCY: usize = 50;

/// A size as the table names it (`1 KB`, `16 KB`).
fn size_label(bytes: usize) -> String {
    format!("{} KB", bytes / 1024)
}

/// `add_many` batch for tasks of `bytes`: about 1 MB of arguments per call, at most 500.
fn batch_of(bytes: usize) -> usize {
    (1_000_000 / bytes.max(1)).clamp(1, 500)
}

/// Adds N echo tasks of `bytes`, drops the producer, resets the server's stats and has a
/// worker child drain them (state tracking, concurrency 50). Also returns the time Redis
/// spent in each command over the drain.
async fn payload_once(bench: &mut Bench, bytes: usize) -> Result<(Drained, BTreeMap<String, u64>)> {
    bench.clean().await?;
    let tasks = bench.n(20_000);
    let name = bench.fresh_name("payload");
    let producer = bench.producer(&name, TRACKED).await?;
    add_echoes(&producer, tasks, bytes, batch_of(bytes)).await?;
    drop(producer);
    let exe = bench.exe.clone();
    let drained = drain_queued(bench, &exe, &name, tasks, (CONCURRENCY, TRACKED), None).await?;
    let usec = server::command_usec(&mut bench.admin).await?;
    Ok((drained, usec))
}

/// `L_d`: whole queue cycles per second, one script call each carrying `bytes` bytes,
/// driven by `redis-benchmark -c 50 -n requests EVALSHA`. Checks that the stream ends
/// empty.
async fn carrying_ceiling(bench: &mut Bench, bytes: usize, requests: usize) -> Result<f64> {
    let stream = format!("{}:ceiling-stream", bench.fresh_name("payload-ceiling"));
    let field = "x".repeat(bytes);
    server::cycle_ceiling(&bench.target, &mut bench.admin, &stream, &field, requests).await
}

/// The figures of one size over its runs: `L_d`, the drain (held to `≥ 0.5·L_d`), the
/// drain as a ratio to `L_d`, and Redis's CPU and server-side commands per task.
fn size_figures(bytes: usize, ceilings: &[f64], runs: &[Drained]) -> Vec<Figure> {
    let (size, key) = (size_label(bytes), format!("d{bytes}"));
    let ceiling = Summary::of(ceilings);
    let rates: Vec<f64> = runs.iter().map(Drained::rate).collect();
    let ratios: Vec<f64> = rates.iter().zip(ceilings).map(|(r, l)| r / l).collect();
    let per_task =
        |f: &dyn Fn(&Drained) -> f64| Summary::of(&runs.iter().map(f).collect::<Vec<_>>());
    vec![
        Figure::new(
            SCENARIO,
            format!("payload.L.{key}"),
            format!("L_{bytes}: the L cycle carrying a {size} field, 50 clients"),
            "cycles/s",
            ceiling.clone(),
        ),
        Figure::new(
            SCENARIO,
            format!("payload.drain.{key}"),
            format!("drain state, c=50, {size} arguments and results"),
            "tasks/s",
            Summary::of(&rates),
        )
        .at_least(0.5 * ceiling.median, format!("≥ 0.5·L_{bytes}")),
        Figure::new(
            SCENARIO,
            format!("payload.drain.{key}.vs_L"),
            format!("drain state, c=50, {size}: drain / L_{bytes} (each run)"),
            "×L_d",
            Summary::of(&ratios),
        ),
        Figure::new(
            SCENARIO,
            format!("payload.drain.{key}.redis_cpu"),
            format!("drain state, c=50, {size}: Redis CPU per task"),
            "µs",
            per_task(&|d| d.redis_cpu_ms * 1e3 / count(d.tasks)),
        ),
        Figure::new(
            SCENARIO,
            format!("payload.drain.{key}.worker_cpu"),
            format!("drain state, c=50, {size}: worker CPU per task"),
            "µs",
            per_task(&Drained::worker_cpu_us),
        ),
        Figure::new(
            SCENARIO,
            format!("payload.drain.{key}.server_commands"),
            format!("drain state, c=50, {size}: server-side executions/task (commandstats)"),
            "cmds/task",
            per_task(&Drained::server_commands_per_task),
        ),
    ]
}

/// Scenario 13, payload size: for 1 KB and 16 KB, `L_d` and a drain of N echo tasks at
/// concurrency 50 with state tracking, in each run one after the other.
pub(crate) async fn payload(bench: &mut Bench) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut details = serde_json::Map::new();
    let requests = bench.n(100_000);
    for bytes in SIZES {
        let (mut ceilings, mut runs, mut usec) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..bench.runs {
            bench.clean().await?;
            ceilings.push(carrying_ceiling(bench, bytes, requests).await?);
            let (drained, spent) = payload_once(bench, bytes).await?;
            usec.push(
                spent
                    .into_iter()
                    .map(|(command, us)| (command, count64(us) / count(drained.tasks)))
                    .collect::<BTreeMap<_, _>>(),
            );
            runs.push(drained);
            // Leaves the server as empty as it found it: the records and results of 16 KB
            // tasks take a gigabyte.
            bench.clean().await?;
        }
        outcome
            .figures
            .extend(size_figures(bytes, &ceilings, &runs));
        details.insert(
            format!("d{bytes}"),
            json!({
                "bytes": bytes,
                "L_d": Summary::of(&ceilings),
                "runs": runs.iter().map(Drained::to_json).collect::<Vec<_>>(),
                "commandstats_usec_per_task": usec,
            }),
        );
    }
    details.insert(
        "method".into(),
        json!({
            "tasks": bench.n(20_000),
            "task": "bench_echo(data: String) -> String returns its argument: a string of d \
                     bytes ('x' repeated) in, the same out (stored as the result, state tracking)",
            "worker": "a child process, `docket-bench-worker --mode drain`, concurrency 50; \
                       tasks added beforehand with add_many (about 1 MB of arguments per call)",
            "rate": "N / (start of run_until_finished → its return), timed in the child",
            "L_d": format!(
                "redis-benchmark -c 50 -n {requests} -q EVALSHA <sha> 1 <stream> <d bytes>; the \
                 script XADDs a message whose one field is the d-byte argument, XREADGROUPs \
                 it, XACKs and XDELs it, and returns 1; measured just before each drain"
            ),
            "between_runs": "FLUSHALL (the server is the bench's own)",
        }),
    );
    outcome.details = serde_json::Value::Object(details);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_about_a_megabyte() {
        assert_eq!(batch_of(1024), 500);
        assert_eq!(batch_of(16 * 1024), 61);
        assert_eq!(batch_of(0), 500);
        assert_eq!(size_label(16 * 1024), "16 KB");
    }
}
