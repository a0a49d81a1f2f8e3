//! Scenario 14, many workers: four worker processes, concurrency 50 each, drain N no-ops
//! with state tracking from one docket, against one worker process on the same N in the
//! same run; the fleet's throughput, Redis commands per task, and each worker's share.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::context::Bench;
use super::drain::redis_cpu_ms;
use super::{TRACKED, count_u64};
use crate::child::{ChildReport, Mode, add_noops};
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, count, count64, millis};

/// The scenario's name in the table.
const SCENARIO: &str = "14 fleet";

/// Worker processes in the fleet.
const FLEET: usize = 4;

/// Each worker's concurrency.
const CONCURRENCY: usize = 50;

/// One drain of N no-ops by `workers` processes started together.
#[derive(Debug)]
struct FleetRun {
    tasks: usize,
    /// Each worker's report, in spawn order.
    children: Vec<ChildReport>,
    /// From opening the gate (closing every child's standard input) to the last
    /// child's exit, seen by the parent.
    wall: Duration,
    /// `INFO commandstats` calls over the drain (script-internal calls included).
    commandstats: BTreeMap<String, u64>,
    /// CPU time Redis used over the drain, in milliseconds.
    redis_cpu_ms: f64,
}

impl FleetRun {
    /// N / (gate → the last `run_until_finished` return): each child times its run from
    /// its gate, and they open within a millisecond or so of one another.
    fn rate(&self) -> f64 {
        let longest = self.children.iter().map(|c| c.run_ms).fold(0.0, f64::max);
        count(self.tasks) / (longest.max(1e-6) / 1e3)
    }

    /// N / (gate → the last task start, on any worker).
    fn started_rate(&self) -> f64 {
        let last = self
            .children
            .iter()
            .map(|c| c.last_start_ms)
            .fold(0.0, f64::max);
        count(self.tasks) / (last.max(1e-6) / 1e3)
    }

    /// Each worker's share of the task starts, in percent.
    fn shares(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|c| count64(c.starts) * 100.0 / count(self.tasks))
            .collect()
    }

    /// Server-side command executions per task (`INFO commandstats`).
    fn server_commands_per_task(&self) -> f64 {
        count64(self.commandstats.values().sum()) / count(self.tasks)
    }

    /// Redis's CPU time per task, in microseconds.
    fn redis_cpu_us(&self) -> f64 {
        self.redis_cpu_ms * 1e3 / count(self.tasks)
    }

    /// The workers' CPU time per task, all of them together, in microseconds.
    fn worker_cpu_us(&self) -> f64 {
        self.children.iter().map(|c| c.cpu_ms).sum::<f64>() * 1e3 / count(self.tasks)
    }

    fn to_json(&self) -> Value {
        json!({
            "rate_gate_to_last_return": self.rate(),
            "rate_gate_to_last_start": self.started_rate(),
            "parent_gate_to_last_exit_ms": millis(self.wall),
            "shares_percent": self.shares(),
            "server_commands_per_task": self.server_commands_per_task(),
            "redis_cpu_us_per_task": self.redis_cpu_us(),
            "worker_cpu_us_per_task": self.worker_cpu_us(),
            "commandstats": self.commandstats,
            "children": self.children,
        })
    }
}

/// Adds N no-ops, resets the server's stats, spawns `workers` gated worker children on
/// the docket, opens their gates together and waits for every one to finish.
async fn fleet_once(bench: &mut Bench, workers: usize) -> Result<FleetRun> {
    bench.clean().await?;
    let tasks = bench.n(20_000);
    let name = bench.fresh_name("fleet");
    let producer = bench.producer(&name, TRACKED).await?;
    add_noops(&producer, tasks, 500).await?;
    drop(producer);
    // As scenario 5: the workers' connection set-up counts.
    server::reset_stats(&mut bench.admin).await?;
    let redis_cpu_before = redis_cpu_ms(&mut bench.admin).await?;
    let mut spawned = Vec::with_capacity(workers);
    for _ in 0..workers {
        spawned.push(
            bench
                .spawn_worker(Mode::Gated, &name, CONCURRENCY, TRACKED)
                .await?,
        );
    }
    let opened = Instant::now();
    // Each finish closes its child's standard input first: spawned together, the gates
    // open together.
    let finishing: Vec<_> = spawned
        .into_iter()
        .map(|worker| tokio::spawn(worker.finish()))
        .collect();
    let mut children = Vec::with_capacity(workers);
    for finish in finishing {
        let (report, _) = finish.await.context("a worker child's finish")??;
        children.push(report);
    }
    let wall = opened.elapsed();
    let redis_cpu_ms = redis_cpu_ms(&mut bench.admin).await? - redis_cpu_before;
    let commandstats = server::commandstats(&mut bench.admin).await?;
    let started: u64 = children.iter().map(|c| c.starts).sum();
    if started != count_u64(tasks) {
        bail!("{workers} workers started {started} tasks of {tasks}");
    }
    Ok(FleetRun {
        tasks,
        children,
        wall,
        commandstats,
        redis_cpu_ms,
    })
}

/// A figure of one value per run.
fn figure(key: &str, label: String, unit: &'static str, values: &[f64]) -> Figure {
    Figure::new(
        SCENARIO,
        format!("fleet.{key}"),
        label,
        unit,
        Summary::of(values),
    )
}

/// The scenario's figures, and the 4-to-1 throughput ratio of each run.
fn figures(single: &[FleetRun], many: &[FleetRun]) -> (Vec<Figure>, Vec<f64>) {
    let of = |runs: &[FleetRun], f: fn(&FleetRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let ratios: Vec<f64> = single
        .iter()
        .zip(many)
        .map(|(one, four)| four.rate() / one.rate())
        .collect();
    let lowest: Vec<f64> = many
        .iter()
        .map(|run| run.shares().into_iter().fold(f64::INFINITY, f64::min))
        .collect();
    let highest: Vec<f64> = many
        .iter()
        .map(|run| run.shares().into_iter().fold(0.0, f64::max))
        .collect();
    let mut figures = Vec::new();
    for (key, who, runs) in [("w1", "1 worker", single), ("w4", "4 workers", many)] {
        figures.push(figure(
            key,
            format!("{who} × c=50, state, N / (gate → last return)"),
            "tasks/s",
            &of(runs, FleetRun::rate),
        ));
        figures.push(figure(
            &format!("{key}.to_last_start"),
            format!("{who} × c=50, state, N / (gate → last task start)"),
            "tasks/s",
            &of(runs, FleetRun::started_rate),
        ));
    }
    figures.push(
        figure(
            "w4_vs_w1",
            "4 workers / 1 worker throughput (each run)".to_owned(),
            "×",
            &ratios,
        )
        .at_least(1.0, "≥ 1"),
    );
    let started_ratios: Vec<f64> = single
        .iter()
        .zip(many)
        .map(|(one, four)| four.started_rate() / one.started_rate())
        .collect();
    figures.push(figure(
        "w4_vs_w1.to_last_start",
        "4 workers / 1 worker, N / (gate → last task start) (each run)".to_owned(),
        "×",
        &started_ratios,
    ));
    for (key, who, runs) in [("w1", "1 worker", single), ("w4", "4 workers", many)] {
        let mut commands = figure(
            &format!("{key}.server_commands"),
            format!("{who}: server-side executions/task (commandstats)"),
            "cmds/task",
            &of(runs, FleetRun::server_commands_per_task),
        );
        if key == "w4" {
            commands = commands.at_most(8.0, "≤ 8");
        }
        figures.push(commands);
        figures.push(figure(
            &format!("{key}.redis_cpu"),
            format!("{who}: Redis CPU per task"),
            "µs",
            &of(runs, FleetRun::redis_cpu_us),
        ));
        figures.push(figure(
            &format!("{key}.worker_cpu"),
            format!("{who}: worker CPU per task (all workers)"),
            "µs",
            &of(runs, FleetRun::worker_cpu_us),
        ));
    }
    figures.push(
        figure(
            "w4.share.lowest",
            "4 workers: the smallest worker's share of the tasks".to_owned(),
            "%",
            &lowest,
        )
        .at_least(15.0, "≥ 15%"),
    );
    figures.push(
        figure(
            "w4.share.highest",
            "4 workers: the largest worker's share of the tasks".to_owned(),
            "%",
            &highest,
        )
        .at_most(35.0, "≤ 35%"),
    );
    (figures, ratios)
}

/// Scenario 14, many workers: in each run, one worker then four drain N no-ops (state
/// tracking, concurrency 50 each) from a docket.
pub(crate) async fn fleet(bench: &mut Bench) -> Result<Outcome> {
    let (mut single, mut many) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        single.push(fleet_once(bench, 1).await?);
        many.push(fleet_once(bench, FLEET).await?);
    }
    bench.clean().await?;
    let (figures, ratios) = figures(&single, &many);
    let details = json!({
        "tasks": bench.n(20_000),
        "workers": FLEET,
        "concurrency": CONCURRENCY,
        "method": "N no-ops added with add_many ×500 (state tracking); the worker children \
                   (`docket-bench-worker --mode gated`) each connect and build their worker, \
                   say ready, and start run_until_finished when their standard input \
                   closes; the parent closes every child's at once (CONFIG RESETSTAT before \
                   they are spawned). Rate: N / the longest child's run (gate → \
                   run_until_finished returns); also N / the latest task start. Share: each \
                   child's task starts / N. Commands: INFO commandstats over the drain, \
                   script calls included.",
        "single": single.iter().map(FleetRun::to_json).collect::<Vec<_>>(),
        "fleet": many.iter().map(FleetRun::to_json).collect::<Vec<_>>(),
        "ratio_4_to_1": Summary::of(&ratios),
    });
    Ok(Outcome { figures, details })
}
