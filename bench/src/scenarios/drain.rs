//! Scenario 2, drain: a worker child drains N no-ops at several concurrencies, with
//! state tracking and fire-and-forget, and the CPU each side spends per task; and
//! scenario 6, worker memory, measured on those drains: peak and at-exit RSS, for the
//! plain and the lean build of the worker program.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::context::{Bench, Ceilings, ttl_label};
use super::{FIRE_AND_FORGET, TRACKED, count_u64};
use crate::child::{ChildReport, Mode, add_noops};
use crate::monitor::{Counts, Monitor};
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, count, count64, megabytes, millis, rate};

/// One drain: N no-ops added, a worker child drains them; with the server's command
/// counts, and the `MONITOR` counts when asked.
#[derive(Debug, Clone)]
pub(crate) struct Drained {
    pub tasks: usize,
    pub child: ChildReport,
    /// From the child's `ready` to its exit, seen by the parent.
    pub wall: Duration,
    /// `INFO commandstats` calls over the drain (script-internal calls included).
    pub commandstats: BTreeMap<String, u64>,
    /// CPU time Redis used over the drain (`INFO cpu`, user + system), in milliseconds.
    pub redis_cpu_ms: f64,
    pub monitor: Option<Counts>,
}

impl Drained {
    /// N / (start of `run_until_finished` → its return), in the child.
    pub(crate) fn rate(&self) -> f64 {
        count(self.tasks) / (self.child.run_ms / 1e3)
    }

    /// N / (first task start → last task start), in the child.
    pub(crate) fn active_rate(&self) -> f64 {
        let span = (self.child.last_start_ms - self.child.first_start_ms).max(1e-6);
        count(self.tasks) / (span / 1e3)
    }

    /// N / (`ready` → exit), seen by the parent.
    pub(crate) fn wall_rate(&self) -> f64 {
        rate(self.tasks, self.wall)
    }

    /// The worker's CPU time per task, in microseconds.
    pub(crate) fn worker_cpu_us(&self) -> f64 {
        self.child.cpu_ms * 1e3 / count(self.tasks)
    }

    /// Server-side command executions per task (`INFO commandstats`, script calls included).
    pub(crate) fn server_commands_per_task(&self) -> f64 {
        count64(self.commandstats.values().sum()) / count(self.tasks)
    }

    /// The figures of this run as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "rate_run": self.rate(),
            "rate_first_to_last_start": self.active_rate(),
            "rate_parent_ready_to_exit": self.wall_rate(),
            "parent_ready_to_exit_ms": millis(self.wall),
            "child": self.child,
            "server_commands_per_task": self.server_commands_per_task(),
            "redis_cpu_us_per_task": self.redis_cpu_ms * 1e3 / count(self.tasks),
            "worker_cpu_us_per_task": self.worker_cpu_us(),
            "commandstats": self.commandstats,
            "monitor": self.monitor,
        })
    }
}

/// Adds N no-ops, drops the producer, resets the server's stats and has a worker child
/// (of the worker program `exe`, the bench's by default) drain them.
pub(crate) async fn drain_once(
    bench: &mut Bench,
    exe: Option<&Path>,
    concurrency: usize,
    ttl: Duration,
    monitored: bool,
) -> Result<Drained> {
    bench.clean().await?;
    let tasks = bench.n(20_000);
    let name = bench.fresh_name("drain");
    let producer = bench.producer(&name, ttl).await?;
    add_noops(&producer, tasks, 500).await?;
    drop(producer);
    let monitor = if monitored {
        let sentinel = format!("{name}:monitor-end");
        Some(Monitor::start(&bench.target, sentinel).await?)
    } else {
        None
    };
    let exe = exe.unwrap_or(&bench.exe).to_owned();
    drain_queued(bench, &exe, &name, tasks, (concurrency, ttl), monitor).await
}

/// Resets the server's stats and has a worker child of the program `exe` drain the
/// `tasks` calls queued on docket `name`, at `(concurrency, ttl)`: the drain, Redis's
/// CPU and command counts over it, and the `MONITOR` counts when `monitor` watched it.
///
/// # Errors
/// When a step fails, or the worker started fewer or more tasks than `tasks`.
pub(crate) async fn drain_queued(
    bench: &mut Bench,
    exe: &Path,
    name: &str,
    tasks: usize,
    (concurrency, ttl): (usize, Duration),
    monitor: Option<Monitor>,
) -> Result<Drained> {
    server::reset_stats(&mut bench.admin).await?;
    let redis_cpu_before = redis_cpu_ms(&mut bench.admin).await?;
    let worker = bench
        .spawn_worker_of(exe, Mode::Drain, name, concurrency, ttl)
        .await?;
    let (child, wall) = worker.finish().await?;
    let redis_cpu_ms = redis_cpu_ms(&mut bench.admin).await? - redis_cpu_before;
    let monitored = monitor.is_some();
    let monitor = match monitor {
        Some(monitor) => Some(monitor.finish(&mut bench.admin).await?),
        None => None,
    };
    let mut commandstats = server::commandstats(&mut bench.admin).await?;
    if monitored {
        // The sentinel ECHO is the bench's own.
        if let Some(echo) = commandstats.get_mut("echo") {
            *echo = echo.saturating_sub(1);
        }
        commandstats.retain(|_, calls| *calls > 0);
    }
    if child.starts != count_u64(tasks) {
        bail!("the worker started {} tasks of {tasks}", child.starts);
    }
    Ok(Drained {
        tasks,
        child,
        wall,
        commandstats,
        redis_cpu_ms,
        monitor,
    })
}

/// CPU time the Redis server has used (user + system), in milliseconds.
pub(crate) async fn redis_cpu_ms(admin: &mut redis::aio::MultiplexedConnection) -> Result<f64> {
    let cpu = server::info(admin, "cpu").await?;
    let seconds = |field: &str| {
        cpu.get(field)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((seconds("used_cpu_user") + seconds("used_cpu_sys")) * 1e3)
}

/// Redis's and the worker's CPU time per task over drains.
/// Redis's and the worker's CPU per task of the drains at concurrency 50; with state
/// tracking (`tracked`), Redis's is held to 12 µs.
fn cpu_figures(key: &str, mode: &str, tracked: bool, runs: &[Drained]) -> Vec<Figure> {
    let redis: Vec<f64> = runs
        .iter()
        .map(|d| d.redis_cpu_ms * 1e3 / count(d.tasks))
        .collect();
    let worker: Vec<f64> = runs.iter().map(Drained::worker_cpu_us).collect();
    [("redis", redis), ("worker", worker)]
        .into_iter()
        .map(|(who, cpu)| {
            let figure = Figure::new(
                "2 drain",
                format!("drain.{key}.{who}_cpu"),
                format!("drain {mode}, concurrency 50, {who} CPU per task"),
                "µs",
                Summary::of(&cpu),
            );
            if tracked && who == "redis" {
                figure.at_most(12.0, "≤ 12 µs")
            } else {
                figure
            }
        })
        .collect()
}

/// Which build of the worker program ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Build {
    /// `cargo build --release`.
    Plain,
    /// The lean build (docs/production.md, "Worker memory").
    Lean,
}

impl Build {
    /// The figure key's prefix.
    fn key(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Lean => "lean.",
        }
    }

    /// How labels name the build.
    fn label(self) -> &'static str {
        match self {
            Self::Plain => "",
            Self::Lean => "lean build, ",
        }
    }
}

/// Scenario 6 for one build and configuration: peak RSS at concurrency 50 and 200 (held
/// to the targets when `judged`), and at 50 the RSS at exit split into anonymous and
/// file-backed memory.
fn rss_figures(
    build: Build,
    judged: bool,
    (mode, concurrency): (&str, usize),
    runs: &[Drained],
) -> Vec<Figure> {
    let limit = match concurrency {
        50 => (5.0, "≤ 5 MB"),
        200 => (12.0, "≤ 12 MB"),
        _ => return Vec::new(),
    };
    let (key, label) = (build.key(), build.label());
    let of = |kib: &dyn Fn(&ChildReport) -> u64| -> Summary {
        Summary::of(
            &runs
                .iter()
                .map(|d| megabytes(kib(&d.child)))
                .collect::<Vec<_>>(),
        )
    };
    let mut peak = Figure::new(
        "6 worker RSS",
        format!("rss.{key}{mode}.c{concurrency}"),
        format!("worker peak RSS (VmHWM), {label}{mode}, concurrency {concurrency}"),
        "MB",
        of(&|r| r.hwm_kib),
    );
    if judged {
        peak = peak.at_most(limit.0, limit.1);
    }
    let mut figures = vec![peak];
    if concurrency == 50 {
        let parts = [
            (
                "anon",
                "anonymous (heap, stacks, relocated data)",
                of(&|r| r.rss_anon_kib),
            ),
            (
                "file",
                "file-backed (code, shared libraries)",
                of(&|r| r.rss_file_kib),
            ),
        ];
        figures.extend(parts.into_iter().map(|(id, part, values)| {
            Figure::new(
                "6 worker RSS",
                format!("rss.{key}{mode}.c50.{id}"),
                format!("worker RSS at exit, {label}{part}, {mode}, c=50"),
                "MB",
                values,
            )
        }));
    }
    figures
}

/// Scenario 6 on the lean build: drains at concurrency 50 and 200, both modes; their
/// RSS figures (held to the targets) and, at 50, the rate and the worker's CPU beside
/// the plain build's.
async fn lean_drains(bench: &mut Bench, lean: &Path, memory: &mut Outcome) -> Result<Value> {
    let mut details = serde_json::Map::new();
    for ttl in [TRACKED, FIRE_AND_FORGET] {
        for concurrency in [50, 200] {
            let mut runs = Vec::new();
            for _ in 0..bench.runs {
                runs.push(drain_once(bench, Some(lean), concurrency, ttl, false).await?);
            }
            let mode = ttl_label(ttl);
            memory
                .figures
                .extend(rss_figures(Build::Lean, true, (mode, concurrency), &runs));
            if concurrency == 50 {
                let rates: Vec<f64> = runs.iter().map(Drained::rate).collect();
                let cpu: Vec<f64> = runs.iter().map(Drained::worker_cpu_us).collect();
                memory.figures.push(Figure::new(
                    "6 worker RSS",
                    format!("drain.lean.{mode}.c50"),
                    format!("drain {mode}, concurrency 50, lean build"),
                    "tasks/s",
                    Summary::of(&rates),
                ));
                memory.figures.push(Figure::new(
                    "6 worker RSS",
                    format!("drain.lean.{mode}.c50.worker_cpu"),
                    format!("drain {mode}, concurrency 50, lean build, worker CPU per task"),
                    "µs",
                    Summary::of(&cpu),
                ));
            }
            details.insert(
                format!("{mode}.c{concurrency}"),
                json!({ "runs": runs.iter().map(Drained::to_json).collect::<Vec<_>>() }),
            );
        }
    }
    Ok(Value::Object(details))
}

/// Scenario 2, drain (and 6, worker RSS): one worker child drains N no-ops, concurrency 10, 50
/// and 200, with state tracking and fire-and-forget.
pub(crate) async fn drain(bench: &mut Bench, ceilings: Ceilings) -> Result<(Outcome, Outcome)> {
    let mut drain = Outcome::default();
    let mut memory = Outcome::default();
    let mut details = serde_json::Map::new();
    // The RSS targets are judged on the lean build when there is one: the build to
    // deploy where memory is tight. The plain build's figures are shown beside it.
    let judged_plain = bench.lean.is_none();
    for ttl in [TRACKED, FIRE_AND_FORGET] {
        for concurrency in [10, 50, 200] {
            let mut runs = Vec::new();
            for _ in 0..bench.runs {
                runs.push(drain_once(bench, None, concurrency, ttl, false).await?);
            }
            let mode = ttl_label(ttl);
            let key = format!("{mode}.c{concurrency}");
            let rates: Vec<f64> = runs.iter().map(Drained::rate).collect();
            let mut figure = Figure::new(
                "2 drain",
                format!("drain.{key}"),
                format!("drain {mode}, concurrency {concurrency}"),
                "tasks/s",
                Summary::of(&rates),
            );
            figure = match (concurrency, ttl.is_zero()) {
                (50, true) => figure.at_least(0.45 * ceilings.cycle, "≥ 0.45·L"),
                (50, false) => figure.at_least(0.32 * ceilings.cycle, "≥ 0.32·L"),
                (10, false) => figure.at_least(0.35 * ceilings.cycle, "≥ 0.35·L"),
                _ => figure,
            };
            drain.figures.push(figure);
            if concurrency == 50 {
                drain
                    .figures
                    .extend(cpu_figures(&key, mode, !ttl.is_zero(), &runs));
                let active: Vec<f64> = runs.iter().map(Drained::active_rate).collect();
                drain.figures.push(Figure::new(
                    "2 drain",
                    format!("drain.{key}.first_to_last_start"),
                    format!("drain {mode}, concurrency 50, N / (first → last task start)"),
                    "tasks/s",
                    Summary::of(&active),
                ));
            }
            let hwm: Vec<f64> = runs.iter().map(|d| megabytes(d.child.hwm_kib)).collect();
            memory.figures.extend(rss_figures(
                Build::Plain,
                judged_plain,
                (mode, concurrency),
                &runs,
            ));
            details.insert(
                key,
                json!({
                    "rate_run": Summary::of(&rates),
                    "rate_first_to_last_start": Summary::of(&runs.iter().map(Drained::active_rate).collect::<Vec<_>>()),
                    "rate_parent_ready_to_exit": Summary::of(&runs.iter().map(Drained::wall_rate).collect::<Vec<_>>()),
                    "rate_vs_L": Summary::of(&rates).median / ceilings.cycle,
                    "tail_after_last_start_ms": Summary::of(&runs.iter().map(|d| d.child.run_ms - d.child.last_start_ms).collect::<Vec<_>>()),
                    "peak_rss_mb": Summary::of(&hwm),
                    "server_commands_per_task": Summary::of(&runs.iter().map(Drained::server_commands_per_task).collect::<Vec<_>>()),
                    "runs": runs.iter().map(Drained::to_json).collect::<Vec<_>>(),
                }),
            );
        }
    }
    if let Some(lean) = bench.lean.clone() {
        let lean_details = lean_drains(bench, &lean, &mut memory).await?;
        details.insert("lean".into(), lean_details);
    }
    bench.clean().await?;
    drain.details = json!({
        "tasks": bench.n(20_000),
        "worker": "a child process, `docket-bench-worker --mode drain` (its own program): \
                   Worker::builder(..).concurrency(c).schedule_automatic_tasks(false), \
                   run_until_finished(); tasks added beforehand with add_many ×500",
        "rate": "N / (start of run_until_finished → its return), timed in the child; \
                 also N / (first → last task start) and N / (parent: ready → exit)",
        "configurations": details,
    });
    memory.details = json!({
        "measured": "VmHWM of the worker child from /proc/self/status just before it exits \
                     (MB = 10^6 bytes)",
        "plain": bench.exe,
        "lean": bench.lean,
        "lean_build": {
            "command": "cargo build --release --target <host> --bin docket-bench-worker",
            "RUSTFLAGS": crate::workers::LEAN_RUSTFLAGS,
            "profile": crate::workers::LEAN_PROFILE.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        },
    });
    Ok((drain, memory))
}
