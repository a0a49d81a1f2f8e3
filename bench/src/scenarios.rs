//! The bench's context, worker processes, and the throughput scenarios: ceilings (`L`,
//! `RTT1`), 1 enqueue, 2 drain (with 6, worker RSS) and 5 Redis commands per task.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use docket::Docket;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::child::{ChildReport, Mode, WorkerArgs, add_noops};
use crate::monitor::{Counts, Monitor};
use crate::report::{Figure, Outcome};
use crate::server::{self, Target};
use crate::stats::{Summary, count, count64, megabytes, millis, rate};

/// `execution_ttl` of the state-tracking runs: docket's default.
pub(crate) const TRACKED: Duration = docket::DEFAULT_EXECUTION_TTL;
/// `execution_ttl` of the fire-and-forget runs.
pub(crate) const FIRE_AND_FORGET: Duration = Duration::ZERO;
/// The longest a worker child may take before the bench gives up on it.
const CHILD_TIMEOUT: Duration = Duration::from_mins(5);

/// What every scenario shares: the server, an admin connection, the run settings.
pub(crate) struct Bench {
    pub target: Target,
    pub admin: MultiplexedConnection,
    /// The worker program (`docket-bench-worker`) as `cargo build --release` makes it.
    pub exe: PathBuf,
    /// The same program's lean build, when there is one (scenario 6 measures it too).
    pub lean: Option<PathBuf>,
    /// Runs of each scenario.
    pub runs: usize,
    /// Every N divided by 10.
    pub quick: bool,
    /// Makes docket names unique across bench processes.
    tag: String,
    names: usize,
}

/// The ceilings measured at the start of the run, which the targets are ratios to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceilings {
    /// `L`: whole queue cycles per second inside one script call, 50 clients.
    pub cycle: f64,
    /// `RTT1`: sequential single-client commands per second.
    pub rtt1: f64,
}

impl Bench {
    /// Connects the admin connection to `target`.
    pub(crate) async fn new(
        target: Target,
        workers: (PathBuf, Option<PathBuf>),
        runs: usize,
        quick: bool,
    ) -> Result<Self> {
        let admin = target.connect().await?;
        let (exe, lean) = workers;
        Ok(Self {
            target,
            admin,
            exe,
            lean,
            runs,
            quick,
            tag: format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp()),
            names: 0,
        })
    }

    /// `full`, or a tenth of it with `--quick`.
    pub(crate) fn n(&self, full: usize) -> usize {
        if self.quick { full / 10 } else { full }
    }

    /// A docket name never used before.
    pub(crate) fn fresh_name(&mut self, what: &str) -> String {
        self.names += 1;
        format!("bench-{what}-{}-{}", self.tag, self.names)
    }

    /// Empties the server between runs, when this run started it.
    pub(crate) async fn clean(&mut self) -> Result<()> {
        if self.target.owned {
            server::flushall(&mut self.admin).await?;
        }
        Ok(())
    }

    /// A producer handle on the docket `name`.
    pub(crate) async fn producer(&self, name: &str, ttl: Duration) -> Result<Docket> {
        Ok(Docket::builder(name, self.target.url.as_str())
            .execution_ttl(ttl)
            .connect()
            .await?)
    }

    /// Spawns a worker child on the docket `name` and waits until it is ready.
    pub(crate) async fn spawn_worker(
        &self,
        mode: Mode,
        name: &str,
        concurrency: usize,
        ttl: Duration,
    ) -> Result<WorkerProcess> {
        self.spawn_worker_of(&self.exe, mode, name, concurrency, ttl)
            .await
    }

    /// Spawns the worker program `exe` on the docket `name` and waits until it is ready.
    async fn spawn_worker_of(
        &self,
        exe: &Path,
        mode: Mode,
        name: &str,
        concurrency: usize,
        ttl: Duration,
    ) -> Result<WorkerProcess> {
        let args = WorkerArgs {
            mode,
            url: self.target.url.clone(),
            name: name.to_owned(),
            concurrency,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            tasks: 0,
        };
        WorkerProcess::spawn(exe, &args).await
    }
}

/// The label of an `execution_ttl`: state tracking or fire-and-forget.
pub(crate) fn ttl_label(ttl: Duration) -> &'static str {
    if ttl.is_zero() {
        "fire-and-forget"
    } else {
        "state"
    }
}

/// A worker child process, ready to run.
pub(crate) struct WorkerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// When it said `ready`.
    ready: Instant,
}

impl WorkerProcess {
    /// Spawns the worker program `exe` with `args` and waits for its `ready` line.
    pub(crate) async fn spawn(exe: &Path, args: &WorkerArgs) -> Result<Self> {
        let mut child = tokio::process::Command::new(exe)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning the worker child")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the worker child"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_mins(1), lines.next_line())
            .await
            .context("waiting for the worker child to be ready")??;
        if first.as_deref() != Some("ready") {
            bail!("the worker child said {first:?} instead of ready");
        }
        Ok(Self {
            child,
            lines,
            ready: Instant::now(),
        })
    }

    /// Closes its standard input (a `serve` child stops then), reads its report and waits
    /// for it to exit. Also returns the time from `ready` to its exit.
    pub(crate) async fn finish(mut self) -> Result<(ChildReport, Duration)> {
        drop(self.child.stdin.take());
        let waiting = async {
            let mut last = None;
            while let Some(line) = self.lines.next_line().await? {
                last = Some(line);
            }
            let status = self.child.wait().await?;
            anyhow::Ok((last, status))
        };
        let (last, status) = tokio::time::timeout(CHILD_TIMEOUT, waiting)
            .await
            .context("the worker child took too long")??;
        let wall = self.ready.elapsed();
        if !status.success() {
            bail!("the worker child exited with {status}");
        }
        let last = last.ok_or_else(|| anyhow!("the worker child printed no report"))?;
        let report = serde_json::from_str(&last)
            .with_context(|| format!("the worker child's report: {last}"))?;
        Ok((report, wall))
    }
}

/// Ceilings: `L` (the cycle script under 50 clients), `RTT1` (sequential `SET` from one
/// redis-rs connection) and `redis-benchmark -c 1` for reference.
pub(crate) async fn ceilings(bench: &mut Bench) -> Result<(Ceilings, Outcome)> {
    let (mut cycle, mut rtt1, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rtt1_cpu, mut rtt1_usec) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        let stream = format!("{}:ceiling-stream", bench.fresh_name("ceiling"));
        let target = bench.target.clone();
        let requests = bench.n(200_000);
        cycle.push(server::cycle_ceiling(&target, &mut bench.admin, &stream, requests).await?);
        let key = format!("{}:rtt1", bench.fresh_name("ceiling"));
        let set_before = server::command_time(&mut bench.admin, "set").await?;
        let (rate, cpu) = server::single_client_rate(&target, &key, bench.n(20_000)).await?;
        let set_after = server::command_time(&mut bench.admin, "set").await?;
        rtt1.push(rate);
        rtt1_cpu.push(cpu);
        rtt1_usec.push(set_after.usec_per_call_since(set_before));
        reference.push(server::benchmark_single_client(&target, &key, bench.n(50_000)).await?);
    }
    let (cycle, rtt1, reference) = (
        Summary::of(&cycle),
        Summary::of(&rtt1),
        Summary::of(&reference),
    );
    let ceilings = Ceilings {
        cycle: cycle.median,
        rtt1: rtt1.median,
    };
    let scenario = "0 ceiling";
    let figures = vec![
        Figure::new(
            scenario,
            "ceiling.L",
            "L: XADD+XREADGROUP+XACK+XDEL in one EVALSHA, 50 clients",
            "cycles/s",
            cycle,
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1",
            "RTT1: sequential SET, one redis-rs connection",
            "cmds/s",
            rtt1,
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1.client_cpu",
            "RTT1: client CPU per SET (all threads)",
            "µs",
            Summary::of(&rtt1_cpu),
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1.command_time",
            "RTT1: Redis time inside each SET (commandstats)",
            "µs",
            Summary::of(&rtt1_usec),
        ),
        Figure::new(
            scenario,
            "ceiling.benchmark_c1",
            "redis-benchmark -c 1 SET (reference)",
            "cmds/s",
            reference,
        ),
    ];
    let details = json!({
        "L": "redis-benchmark -c 50 -n 200000 -q EVALSHA <sha> 1 <stream>; the script XADDs, \
              XREADGROUPs (creating the group when missing), XACKs and XDELs one message",
        "RTT1": "20000 sequential SET k v awaited one by one on one multiplexed redis-rs connection",
    });
    Ok((ceilings, Outcome { figures, details }))
}

/// Scenario 1, enqueue: sequential `add` and `add_many` in batches of 500.
pub(crate) async fn enqueue(bench: &mut Bench, ceilings: Ceilings) -> Result<Outcome> {
    let n = bench.n(20_000);
    let (mut sequential, mut batched) = (Vec::new(), Vec::new());
    let (mut client_cpu, mut redis_cpu) = (Vec::new(), Vec::new());
    let mut script_usec = Vec::new();
    let (mut many_client_cpu, mut many_redis_cpu) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        bench.clean().await?;
        let name = bench.fresh_name("add");
        let producer = bench.producer(&name, TRACKED).await?;
        let redis_before = redis_cpu_ms(&mut bench.admin).await?;
        let script_before = server::command_time(&mut bench.admin, "evalsha").await?;
        let client_before = crate::child::cpu_ms();
        let started = Instant::now();
        for _ in 0..n {
            producer.add(crate::child::Noop::new()).await?;
        }
        sequential.push(rate(n, started.elapsed()));
        let script_after = server::command_time(&mut bench.admin, "evalsha").await?;
        script_usec.push(script_after.usec_per_call_since(script_before));
        // Per add, in µs: this process (the adding loop and its connection) and Redis.
        client_cpu.push((crate::child::cpu_ms() - client_before) * 1e3 / count(n));
        redis_cpu.push((redis_cpu_ms(&mut bench.admin).await? - redis_before) * 1e3 / count(n));
        drop(producer);

        bench.clean().await?;
        let name = bench.fresh_name("add-many");
        let producer = bench.producer(&name, TRACKED).await?;
        let redis_before = redis_cpu_ms(&mut bench.admin).await?;
        let client_before = crate::child::cpu_ms();
        let started = Instant::now();
        add_noops(&producer, n, 500).await?;
        batched.push(rate(n, started.elapsed()));
        many_client_cpu.push((crate::child::cpu_ms() - client_before) * 1e3 / count(n));
        many_redis_cpu
            .push((redis_cpu_ms(&mut bench.admin).await? - redis_before) * 1e3 / count(n));
    }
    bench.clean().await?;
    let scenario = "1 enqueue";
    let figures = vec![
        Figure::new(
            scenario,
            "enqueue.add",
            format!("sequential add, N={n}"),
            "tasks/s",
            Summary::of(&sequential),
        )
        .at_least(0.8 * ceilings.rtt1, "≥ 0.8·RTT1"),
        Figure::new(
            scenario,
            "enqueue.add.client_cpu",
            "sequential add, client CPU per add (all threads)",
            "µs",
            Summary::of(&client_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add.redis_cpu",
            "sequential add, Redis CPU per add",
            "µs",
            Summary::of(&redis_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add.script_time",
            "sequential add, Redis time inside its EVALSHA (commandstats)",
            "µs",
            Summary::of(&script_usec),
        ),
        Figure::new(
            scenario,
            "enqueue.add_many",
            format!("add_many ×500, N={n}"),
            "tasks/s",
            Summary::of(&batched),
        )
        .at_least(1.6 * ceilings.cycle, "≥ 1.6·L"),
        Figure::new(
            scenario,
            "enqueue.add_many.client_cpu",
            "add_many ×500, client CPU per call (all threads)",
            "µs",
            Summary::of(&many_client_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add_many.redis_cpu",
            "add_many ×500, Redis CPU per call",
            "µs",
            Summary::of(&many_redis_cpu),
        ),
    ];
    let details = json!({
        "tasks": n,
        "batch": 500,
        "add_vs_RTT1": Summary::of(&sequential).median / ceilings.rtt1,
        "add_many_vs_L": Summary::of(&batched).median / ceilings.cycle,
    });
    Ok(Outcome { figures, details })
}

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
    server::reset_stats(&mut bench.admin).await?;
    let redis_cpu_before = redis_cpu_ms(&mut bench.admin).await?;
    let exe = exe.unwrap_or(&bench.exe);
    let worker = bench
        .spawn_worker_of(exe, Mode::Drain, &name, concurrency, ttl)
        .await?;
    let (child, wall) = worker.finish().await?;
    let redis_cpu_ms = redis_cpu_ms(&mut bench.admin).await? - redis_cpu_before;
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
async fn redis_cpu_ms(admin: &mut redis::aio::MultiplexedConnection) -> Result<f64> {
    let cpu = server::info(admin, "cpu").await?;
    let seconds = |field: &str| {
        cpu.get(field)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((seconds("used_cpu_user") + seconds("used_cpu_sys")) * 1e3)
}

/// A count as `u64`.
pub(crate) fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Redis's and the worker's CPU time per task over drains.
fn cpu_figures(key: &str, mode: &str, runs: &[Drained]) -> Vec<Figure> {
    let redis: Vec<f64> = runs
        .iter()
        .map(|d| d.redis_cpu_ms * 1e3 / count(d.tasks))
        .collect();
    let worker: Vec<f64> = runs.iter().map(Drained::worker_cpu_us).collect();
    [("redis", redis), ("worker", worker)]
        .into_iter()
        .map(|(who, cpu)| {
            Figure::new(
                "2 drain",
                format!("drain.{key}.{who}_cpu"),
                format!("drain {mode}, concurrency 50, {who} CPU per task"),
                "µs",
                Summary::of(&cpu),
            )
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
            if concurrency == 50 {
                figure = if ttl.is_zero() {
                    figure.at_least(0.45 * ceilings.cycle, "≥ 0.45·L")
                } else {
                    figure.at_least(0.32 * ceilings.cycle, "≥ 0.32·L")
                };
            }
            drain.figures.push(figure);
            if concurrency == 50 {
                drain.figures.extend(cpu_figures(&key, mode, &runs));
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

/// Per-task medians of per-command counts over runs.
fn per_task(maps: &[&BTreeMap<String, u64>], tasks: usize) -> BTreeMap<String, f64> {
    let mut names: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = maps
                .iter()
                .map(|m| count64(m.get(name).copied().unwrap_or(0)) / count(tasks))
                .collect();
            (name.clone(), Summary::of(&values).median)
        })
        .collect()
}

/// Scenario 5, Redis commands per task on the drain path, concurrency 50: client-sent commands
/// counted exactly under `MONITOR` (an `EVALSHA` is one), and server-side executions
/// from `INFO commandstats` (script calls included).
pub(crate) async fn commands(bench: &mut Bench) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut details = serde_json::Map::new();
    for ttl in [TRACKED, FIRE_AND_FORGET] {
        let mut runs = Vec::new();
        for _ in 0..bench.runs {
            runs.push(drain_once(bench, None, 50, ttl, true).await?);
        }
        let mode = ttl_label(ttl);
        let tasks = bench.n(20_000);
        let counts: Vec<&Counts> = runs.iter().filter_map(|r| r.monitor.as_ref()).collect();
        let client: Vec<f64> = counts
            .iter()
            .map(|c| count64(c.client_total()) / count(tasks))
            .collect();
        let script: Vec<f64> = counts
            .iter()
            .map(|c| count64(c.script_total()) / count(tasks))
            .collect();
        let server: Vec<f64> = runs.iter().map(Drained::server_commands_per_task).collect();
        outcome.figures.push(
            Figure::new(
                "5 commands",
                format!("commands.client.{mode}"),
                format!("client commands/task, {mode}, c=50 (MONITOR)"),
                "cmds/task",
                Summary::of(&client),
            )
            .at_most(8.0, "≤ 8"),
        );
        outcome.figures.push(Figure::new(
            "5 commands",
            format!("commands.server.{mode}"),
            format!("server-side executions/task, {mode}, c=50 (commandstats)"),
            "cmds/task",
            Summary::of(&server),
        ));
        details.insert(
            mode.to_owned(),
            json!({
                "client_per_task": Summary::of(&client),
                "script_internal_per_task": Summary::of(&script),
                "server_executions_per_task": Summary::of(&server),
                "client_per_command_per_task": per_task(&counts.iter().map(|c| &c.client).collect::<Vec<_>>(), tasks),
                "script_per_command_per_task": per_task(&counts.iter().map(|c| &c.script).collect::<Vec<_>>(), tasks),
                "commandstats_per_command_per_task": per_task(&runs.iter().map(|r| &r.commandstats).collect::<Vec<_>>(), tasks),
                "drain_rate_under_monitor": Summary::of(&runs.iter().map(Drained::rate).collect::<Vec<_>>()),
                "runs": runs.iter().map(Drained::to_json).collect::<Vec<_>>(),
            }),
        );
    }
    bench.clean().await?;
    details.insert(
        "method".into(),
        json!(
            "CONFIG RESETSTAT after adding the N tasks (producer dropped), then a worker \
             child drains them. On this Redis (7.x) INFO commandstats and \
             total_commands_processed both include commands called inside scripts (checked: \
             an EVAL calling SET, GET and INCR adds 4 to total_commands_processed), so the \
             client-sent count comes from a MONITOR connection that skips `[0 lua]` lines: \
             every EVALSHA counts 1, its inner calls 0. Includes the worker's connection \
             set-up, heartbeats and final checks; excludes the bench's own CONFIG RESETSTAT \
             and sentinel ECHO. MONITOR slows the server, which may enlarge batches; \
             drain_rate_under_monitor shows by how much."
        ),
    );
    outcome.details = Value::Object(details);
    Ok(outcome)
}
