//! Scenario 16, schedules at scale: 10,000 perpetual tasks (`bench_tick`,
//! `perpetual = "1s"`), each added under a key of its own with its first run spread over
//! one second, run again every second for one minute by one worker child at concurrency
//! 50 (state tracking: a perpetual run's next one is due a period after the run was
//! claimed). How late each run starts against its due time (the task reads
//! `Execution::when()`), and the CPU the worker and Redis spend per run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Result, bail};
use docket::task::Schedule;
use docket::{Call, Task};
use serde_json::{Value, json};

use super::TRACKED;
use super::context::Bench;
use super::drain::redis_cpu_ms;
use crate::child::limited::Tick;
use crate::child::{ChildReport, Mode};
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, count, count64};

/// The scenario's name in the table.
const SCENARIO: &str = "16 schedules";
/// The worker child's concurrency, as in the drain scenario.
const CONCURRENCY: usize = 50;
/// Calls per `add_many`.
const BATCH: usize = 1000;
/// From the end of the adds' start to the first due time: room for the adds.
const LEAD: Duration = Duration::from_secs(1);

/// One minute of perpetual runs.
struct Ticked {
    keys: usize,
    /// How long the schedule ran: from the first due time to the worker's stop.
    window: Duration,
    /// How long the adds took.
    add_ms: f64,
    /// CPU time Redis used over the run, in milliseconds.
    redis_cpu_ms: f64,
    /// `INFO commandstats` calls from the end of the adds to the worker's stop (script
    /// calls and the commands inside them).
    commandstats: BTreeMap<String, u64>,
    /// The share of the machine's CPU time (all processes, all cores) that was busy
    /// from the end of the adds to the worker's stop.
    machine_busy: f64,
    child: ChildReport,
}

impl Ticked {
    /// The worker's CPU time per run, in microseconds.
    fn worker_cpu_us(&self) -> f64 {
        self.child.cpu_ms * 1e3 / count64(self.child.tick_runs.max(1))
    }

    /// Redis's CPU time per run, in microseconds.
    fn redis_cpu_us(&self) -> f64 {
        self.redis_cpu_ms * 1e3 / count64(self.child.tick_runs.max(1))
    }

    /// Server-side command executions per run.
    fn server_commands(&self) -> f64 {
        count64(self.commandstats.values().sum()) / count64(self.child.tick_runs.max(1))
    }

    /// Runs per second over the window.
    fn runs_per_s(&self) -> f64 {
        count64(self.child.tick_runs) / self.window.as_secs_f64()
    }

    fn to_json(&self) -> Value {
        json!({
            "keys": self.keys,
            "window_s": self.window.as_secs_f64(),
            "add_ms": self.add_ms,
            "runs_per_s": self.runs_per_s(),
            "worker_cpu_us_per_run": self.worker_cpu_us(),
            "redis_cpu_us_per_run": self.redis_cpu_us(),
            "server_commands_per_run": self.server_commands(),
            "commandstats_per_run": self.commandstats.iter().map(|(command, calls)| {
                (command.clone(), count64(*calls) / count64(self.child.tick_runs.max(1)))
            }).collect::<BTreeMap<_, _>>(),
            "machine_busy": self.machine_busy,
            "child": self.child,
        })
    }
}

/// The period `bench_tick` declares.
fn every() -> Result<Duration> {
    match Tick::OPTIONS.schedule {
        Some(Schedule::Every(every)) => Ok(every),
        other => bail!("bench_tick is not perpetual on a period: {other:?}"),
    }
}

/// Scenario 16: 10,000 perpetual tasks every second for a minute on one worker child.
pub(crate) async fn schedules(bench: &mut Bench) -> Result<Outcome> {
    let mut runs = Vec::new();
    for _ in 0..bench.runs {
        runs.push(schedule_once(bench).await?);
    }
    bench.clean().await?;
    let keys = bench.n(10_000);
    let seconds = bench.n(60);
    let period = every()?.as_secs_f64();
    let of =
        |figure: &dyn Fn(&Ticked) -> f64| Summary::of(&runs.iter().map(figure).collect::<Vec<_>>());
    let head = format!("{keys} perpetual tasks every {period} s for {seconds} s");
    let figures = vec![
        Figure::new(
            SCENARIO,
            "schedules.lateness.p50",
            format!("{head}: start − due p50"),
            "ms",
            of(&|run| run.child.tick_lateness_p50_ms),
        ),
        Figure::new(
            SCENARIO,
            "schedules.lateness.p99",
            format!("{head}: start − due p99"),
            "ms",
            of(&|run| run.child.tick_lateness_p99_ms),
        )
        .at_most(20.0, "≤ 20 ms"),
        Figure::new(
            SCENARIO,
            "schedules.lateness.max",
            "perpetual: start − due, the latest run",
            "ms",
            of(&|run| run.child.tick_lateness_max_ms),
        ),
        Figure::new(
            SCENARIO,
            "schedules.runs_per_s",
            format!("perpetual: runs per second ({keys} due each period)"),
            "runs/s",
            of(&Ticked::runs_per_s),
        ),
        Figure::new(
            SCENARIO,
            "schedules.worker_cpu",
            "perpetual: worker CPU per scheduled run",
            "µs",
            of(&Ticked::worker_cpu_us),
        ),
        Figure::new(
            SCENARIO,
            "schedules.redis_cpu",
            "perpetual: Redis CPU per scheduled run",
            "µs",
            of(&Ticked::redis_cpu_us),
        ),
        Figure::new(
            SCENARIO,
            "schedules.server_commands",
            "perpetual: server-side executions per run (commandstats)",
            "cmds/run",
            of(&Ticked::server_commands),
        ),
        Figure::new(
            SCENARIO,
            "schedules.machine_busy",
            "perpetual: the machine's CPU busy over the window (every process)",
            "%",
            of(&|run| run.machine_busy * 100.0),
        ),
    ];
    let details = json!({
        "keys": keys,
        "seconds": seconds,
        "worker": format!(
            "a child process (`docket-bench-worker --mode serve`), concurrency {CONCURRENCY}, \
             state tracking, default scheduling_resolution; stopped when the window ends"
        ),
        "added": "add_many ×1000 of `bench_tick` under keys tick-0 .. tick-N, the first runs \
                  due from 1 s after the adds start, spread evenly over one period",
        "lateness": "SystemTime::now() at the task's start − Execution::when() (the due time \
                     the server computed: whole milliseconds, so it reads up to 1 ms high); \
                     every run in the window",
        "runs": runs.iter().map(Ticked::to_json).collect::<Vec<_>>(),
    });
    Ok(Outcome { figures, details })
}

/// One run: the keys added, the worker serving them for the window, its report.
async fn schedule_once(bench: &mut Bench) -> Result<Ticked> {
    bench.clean().await?;
    let keys = bench.n(10_000);
    let window = Duration::from_secs(u64::try_from(bench.n(60)).unwrap_or(60));
    let every = every()?;
    let name = bench.fresh_name("schedules");
    let worker = bench
        .spawn_worker(Mode::Serve, &name, CONCURRENCY, TRACKED)
        .await?;
    let producer = bench.producer(&name, TRACKED).await?;
    let redis_before = redis_cpu_ms(&mut bench.admin).await?;
    let adding = Instant::now();
    let first_due = SystemTime::now() + LEAD;
    let end = adding + LEAD + window;
    let spread = |i: usize| {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let keys = u32::try_from(keys).unwrap_or(u32::MAX).max(1);
        every * i / keys
    };
    let mut next = 0;
    while next < keys {
        let batch = (next..keys.min(next + BATCH)).map(|i| {
            Call::from(Tick::new())
                .key(format!("tick-{i}"))
                .at(first_due + spread(i))
        });
        producer.add_many(batch).await?;
        next += BATCH;
    }
    let add_ms = adding.elapsed().as_secs_f64() * 1e3;
    if adding.elapsed() >= LEAD {
        bail!("adding {keys} perpetual tasks took {add_ms:.0} ms, past their first due time");
    }
    drop(producer);
    server::reset_stats(&mut bench.admin).await?;
    let machine_before = machine_cpu();
    tokio::time::sleep_until(end.into()).await;
    let (child, _) = worker.finish().await?;
    let redis_cpu_ms = redis_cpu_ms(&mut bench.admin).await? - redis_before;
    let commandstats = server::commandstats(&mut bench.admin).await?;
    let machine_after = machine_cpu();
    let machine_busy =
        (machine_after.0 - machine_before.0) / (machine_after.1 - machine_before.1).max(1.0);
    let least = count(keys) * window.as_secs_f64() / every.as_secs_f64() * 0.5;
    if count64(child.tick_runs) < least {
        bail!(
            "the worker ran {} perpetual runs in {window:?}, fewer than half of {keys} a period",
            child.tick_runs
        );
    }
    Ok(Ticked {
        keys,
        window,
        add_ms,
        redis_cpu_ms,
        commandstats,
        machine_busy,
        child,
    })
}

/// The machine's CPU time so far, from the first line of `/proc/stat`: busy and total,
/// in ticks (busy leaves out idle and iowait).
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0.0) + ticks.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}
