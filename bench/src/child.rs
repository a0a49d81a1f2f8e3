//! The benchmark's tasks and its worker role: `docket-bench-worker`, spawned as a
//! separate process so that a worker's memory can be measured on its own, in a program
//! that holds a worker and nothing of the bench around it.
//!
//! The child prints `ready` once connected, then one JSON line with its timings and its
//! peak RSS just before it exits.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use docket::{Docket, Worker};
use serde::{Deserialize, Serialize};

use crate::stats::millis;

/// When the measured part of a child's run began; task starts are timed from it.
static ORIGIN: OnceLock<Instant> = OnceLock::new();
/// Nanoseconds from `ORIGIN` to the first task start, plus one (0: none yet).
static FIRST_START: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds from `ORIGIN` to the latest task start.
static LAST_START: AtomicU64 = AtomicU64::new(0);
/// Task starts counted.
static STARTS: AtomicU64 = AtomicU64::new(0);

/// The no-op task the throughput scenarios drain: it only notes when it started.
#[docket::task(name = "bench_noop")]
pub async fn noop() {
    note_start();
}

/// Returns the wall-clock time it started, in microseconds since the Unix epoch (the
/// latency scenarios read it as the result).
#[docket::task(name = "bench_stamp")]
pub async fn stamp() -> u64 {
    unix_micros(SystemTime::now())
}

/// Returns its argument (the payload scenario: arguments and results of one size).
#[docket::task(name = "bench_echo")]
pub async fn echo(data: String) -> String {
    note_start();
    data
}

/// Records a task start: first, latest and count (three atomics, no lock).
fn note_start() {
    let Some(origin) = ORIGIN.get() else {
        return;
    };
    let nanos = u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let _ = FIRST_START.compare_exchange(0, nanos + 1, Ordering::Relaxed, Ordering::Relaxed);
    LAST_START.fetch_max(nanos, Ordering::Relaxed);
    STARTS.fetch_add(1, Ordering::Relaxed);
}

/// Microseconds since the Unix epoch.
pub fn unix_micros(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// Fields of `/proc/self/status` in KiB (0 for one that is missing).
fn status_kib<const N: usize>(names: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    names.map(|name| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Peak and current resident set size of this process, in KiB (`VmHWM`, `VmRSS`).
pub fn memory_kib() -> (u64, u64) {
    let [peak, now] = status_kib(["VmHWM:", "VmRSS:"]);
    (peak, now)
}

/// This process's anonymous and file-backed resident memory, in KiB (`RssAnon`,
/// `RssFile`).
pub fn rss_split_kib() -> (u64, u64) {
    let [anon, file] = status_kib(["RssAnon:", "RssFile:"]);
    (anon, file)
}

/// CPU time this process has used (user + system), in milliseconds.
pub fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name; USER_HZ
    // is 100 on Linux.
    #[allow(clippy::cast_precision_loss, reason = "tick counts fit an f64 exactly")]
    let ms = (ticks(11) + ticks(12)) as f64 * 10.0;
    ms
}

/// What the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `run_until_finished` on what is queued, then exit.
    Drain,
    /// `run_forever` until standard input closes.
    Serve,
    /// Add `--tasks` no-ops to an in-process `memory://` docket and drain them.
    Memory,
    /// Add `--tasks` no-ops and await every one's result on the one handle: ready
    /// once every waiter is subscribed; the clock for the last result starts when
    /// standard input closes.
    Wait,
    /// As `Drain`, but `run_until_finished` starts only once standard input closes: so
    /// that several workers start on one docket together (the fleet scenario).
    Gated,
}

impl Mode {
    /// Every mode, in `--help`'s order.
    const ALL: [Self; 5] = [
        Self::Drain,
        Self::Serve,
        Self::Memory,
        Self::Wait,
        Self::Gated,
    ];

    /// Its `--mode` value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Drain => "drain",
            Self::Serve => "serve",
            Self::Memory => "memory",
            Self::Wait => "wait",
            Self::Gated => "gated",
        }
    }
}

/// The worker process's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerArgs {
    /// What to run.
    pub mode: Mode,
    /// The docket's URL.
    pub url: String,
    /// The docket's name.
    pub name: String,
    /// The worker's concurrency.
    pub concurrency: usize,
    /// `execution_ttl` in milliseconds (0: fire-and-forget).
    pub ttl_ms: u64,
    /// Tasks to add first (`memory` and `wait` modes).
    pub tasks: usize,
}

/// The value of `--{name}`, a whole number.
fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("`--{name} {value}`: not a whole number"))
}

/// The worker program's `--help`.
pub const WORKER_USAGE: &str = "\
Usage: docket-bench-worker --mode <drain|serve|memory|wait|gated> --url <URL> --name <NAME> \
--concurrency <N> --ttl-ms <MS> [--tasks <N>]

  --mode         drain: run_until_finished on what is queued, then exit;
                 serve: run_forever until standard input closes;
                 memory: add --tasks no-ops to an in-process memory:// docket, drain them
                 wait: add --tasks no-ops and await each one's result (no worker;
                 docket-bench-waiter only);
                 gated: as drain, once standard input closes
  --url          the docket's URL
  --name         the docket's name
  --concurrency  the worker's concurrency
  --ttl-ms       execution_ttl in milliseconds (0: fire-and-forget)
  --tasks        tasks to add first (memory and wait modes; default 0)
";

impl WorkerArgs {
    /// Parses the arguments after the program's name: `Ok(None)` for `--help`. (By hand:
    /// an argument parser would be the bulk of the code this small program runs, and
    /// of its memory.)
    ///
    /// # Errors
    /// Names the flag and the value that is missing, unknown or malformed.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Self>> {
        let mut given = std::collections::BTreeMap::new();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let name = match flag.strip_prefix("--") {
                Some(name @ ("mode" | "url" | "name" | "concurrency" | "ttl-ms" | "tasks")) => {
                    name.to_owned()
                }
                _ => anyhow::bail!("unknown argument `{flag}`\n\n{WORKER_USAGE}"),
            };
            let value = args
                .next()
                .with_context(|| format!("`{flag}` needs a value"))?;
            if given.insert(name, value).is_some() {
                anyhow::bail!("`{flag}` is given twice");
            }
        }
        let mut take = |name: &str| {
            given
                .remove(name)
                .with_context(|| format!("`--{name}` is required\n\n{WORKER_USAGE}"))
        };
        let mode = take("mode")?;
        let mode = Mode::ALL
            .into_iter()
            .find(|known| known.name() == mode)
            .with_context(|| {
                format!("`--mode {mode}`: expected drain, serve, memory, wait or gated")
            })?;
        let (url, name) = (take("url")?, take("name")?);
        let concurrency = number("concurrency", &take("concurrency")?)?;
        let ttl_ms = number("ttl-ms", &take("ttl-ms")?)?;
        let tasks = match given.remove("tasks") {
            Some(tasks) => number("tasks", &tasks)?,
            None => 0,
        };
        Ok(Some(Self {
            mode,
            url,
            name,
            concurrency,
            ttl_ms,
            tasks,
        }))
    }

    /// The arguments that [`parse`](Self::parse) reads back as these.
    #[must_use]
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--mode".to_owned(),
            self.mode.name().to_owned(),
            "--url".to_owned(),
            self.url.clone(),
            "--name".to_owned(),
            self.name.clone(),
            "--concurrency".to_owned(),
            self.concurrency.to_string(),
            "--ttl-ms".to_owned(),
            self.ttl_ms.to_string(),
        ];
        if self.tasks > 0 {
            args.extend(["--tasks".to_owned(), self.tasks.to_string()]);
        }
        args
    }
}

/// The child's report, printed as its last line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChildReport {
    /// Connecting to the docket.
    pub connect_ms: f64,
    /// `memory` mode: adding the tasks.
    pub add_ms: f64,
    /// From the start of the run to its return.
    pub run_ms: f64,
    /// From the start of the run to the first task start.
    pub first_start_ms: f64,
    /// From the start of the run to the last task start.
    pub last_start_ms: f64,
    /// Task starts seen.
    pub starts: u64,
    /// Peak RSS when the run started (`memory` mode: before adding).
    pub hwm_start_kib: u64,
    /// `memory` mode: peak RSS once the tasks were added.
    pub hwm_added_kib: u64,
    /// Peak RSS at the end.
    pub hwm_kib: u64,
    /// RSS at the end.
    pub rss_kib: u64,
    /// Of the RSS at the end: anonymous memory (heap, stacks, relocated data)...
    #[serde(default)]
    pub rss_anon_kib: u64,
    /// ...and file-backed pages (the program's code and the shared libraries it maps).
    #[serde(default)]
    pub rss_file_kib: u64,
    /// CPU time (user + system) the run used, in milliseconds.
    pub cpu_ms: f64,
    /// `wait` mode: heap growth from before the waiters were spawned to all of them
    /// subscribed, in bytes.
    #[serde(default)]
    pub waiters_heap_bytes: u64,
    /// `wait` mode: the same in RSS (with what the allocator keeps after the waiters'
    /// first reads).
    #[serde(default)]
    pub waiters_rss_kib: u64,
    /// `wait` mode: the handle's connections to the Redis server, all waiters subscribed.
    #[serde(default)]
    pub connections: u64,
    /// Runs of `bench_tick` (the schedules scenario), whose lateness is summarized below.
    #[serde(default)]
    pub tick_runs: u64,
    /// Their start − due, in milliseconds: median...
    #[serde(default)]
    pub tick_lateness_p50_ms: f64,
    /// ...99th percentile...
    #[serde(default)]
    pub tick_lateness_p99_ms: f64,
    /// ...and the latest.
    #[serde(default)]
    pub tick_lateness_max_ms: f64,
}

/// Runs the worker role and prints its report.
///
/// # Errors
/// When connecting, adding (`memory` mode) or running the worker fails.
pub async fn run(args: WorkerArgs) -> Result<()> {
    let connecting = Instant::now();
    let docket = Docket::builder(args.name.clone(), args.url.clone())
        .execution_ttl(Duration::from_millis(args.ttl_ms))
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let mut report = ChildReport {
        connect_ms: millis(connecting.elapsed()),
        ..ChildReport::default()
    };
    anyhow::ensure!(
        args.mode != Mode::Wait,
        "the wait role is docket-bench-waiter's"
    );
    if args.mode == Mode::Memory {
        report.hwm_start_kib = memory_kib().0;
        let adding = Instant::now();
        add_noops(&docket, args.tasks, 1000).await?;
        report.add_ms = millis(adding.elapsed());
        report.hwm_added_kib = memory_kib().0;
    }
    let worker = Worker::builder(docket)
        .concurrency(args.concurrency)
        .schedule_automatic_tasks(false)
        .build()?;
    if args.mode != Mode::Memory {
        report.hwm_start_kib = memory_kib().0;
    }
    say("ready")?;
    if args.mode == Mode::Gated {
        // Standard input closing opens the gate (read on a blocking thread).
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
    }
    let origin = *ORIGIN.get_or_init(Instant::now);
    let cpu_before = cpu_ms();
    match args.mode {
        Mode::Drain | Mode::Memory | Mode::Wait | Mode::Gated => {
            worker.run_until_finished().await?;
        }
        Mode::Serve => {
            let stop = worker.shutdown_handle();
            // Standard input closing is the signal to stop (a plain thread: reading it
            // blocks).
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
                stop.shutdown();
            });
            worker.run_forever().await?;
        }
    }
    report.run_ms = millis(origin.elapsed());
    report.cpu_ms = cpu_ms() - cpu_before;
    let nanos_ms = |nanos: u64| millis(Duration::from_nanos(nanos));
    report.first_start_ms = nanos_ms(FIRST_START.load(Ordering::Relaxed).saturating_sub(1));
    report.last_start_ms = nanos_ms(LAST_START.load(Ordering::Relaxed));
    report.starts = STARTS.load(Ordering::Relaxed);
    limited::report_lateness(&mut report);
    (report.hwm_kib, report.rss_kib) = memory_kib();
    (report.rss_anon_kib, report.rss_file_kib) = rss_split_kib();
    say(&serde_json::to_string(&report)?)
}

/// The `wait` role (`docket-bench-waiter`): adds the tasks, awaits each one's result
/// on the one handle, and reports what the waiting cost this process (`heap` gives the
/// bytes it holds on the heap now) and how long the last result took.
///
/// # Errors
/// When connecting, adding or a waiter fails, or the waiters do not subscribe.
pub async fn wait(args: WorkerArgs, heap: fn() -> u64) -> Result<()> {
    let docket = Docket::builder(args.name.clone(), args.url.clone())
        .execution_ttl(Duration::from_millis(args.ttl_ms))
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.url))?;
    let mut report = ChildReport::default();
    let port = redis_port(&args.url)?;
    let mut admin = redis::Client::open(args.url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let adding = Instant::now();
    let mut executions = Vec::with_capacity(args.tasks);
    while executions.len() < args.tasks {
        let batch = (args.tasks - executions.len()).min(1000);
        executions.extend(docket.add_many((0..batch).map(|_| Noop::new())).await?);
    }
    report.add_ms = millis(adding.elapsed());
    let (heap_before, (_, rss_before)) = (heap(), memory_kib());
    let waiters: Vec<_> = executions
        .into_iter()
        .map(|execution| tokio::spawn(async move { execution.result().await }))
        .collect();
    subscribed(&mut admin, 2 * args.tasks).await?;
    // Then each reads its record once: what they hold is measured once that is done
    // and the heap stands still.
    let mut held = heap();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = heap();
        if now.abs_diff(held) < held / 1000 {
            break;
        }
        held = now;
    }
    report.waiters_heap_bytes = heap().saturating_sub(heap_before);
    report.waiters_rss_kib = memory_kib().1.saturating_sub(rss_before);
    // All but the one just opened to watch the subscriptions.
    report.connections = connections_to(port).saturating_sub(1);
    drop(admin);
    say("ready")?;
    // The bench starts a worker, then closes standard input: the clock starts.
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    let origin = Instant::now();
    for waiter in waiters {
        waiter.await??;
    }
    report.run_ms = millis(origin.elapsed());
    (report.hwm_kib, report.rss_kib) = memory_kib();
    say(&serde_json::to_string(&report)?)
}

/// The port of a `redis://host:port/db` URL.
fn redis_port(url: &str) -> Result<u16> {
    let address = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let address = address.rsplit_once('@').map_or(address, |(_, host)| host);
    match address.rsplit_once(':') {
        Some((_, port)) => number("port", port),
        None => Ok(6379),
    }
}

/// This process's established TCP connections to `port` (its sockets in
/// `/proc/self/fd`, their peers in `/proc/self/net/tcp` and `tcp6`).
fn connections_to(port: u16) -> u64 {
    let sockets: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let peer_port = format!(":{port:04X}");
    let mut count = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // remote address, state (01: established), inode
            if let [_, _, remote, "01", _, _, _, _, _, inode, ..] = fields.as_slice()
                && remote.ends_with(&peer_port)
                && sockets.contains(*inode)
            {
                count += 1;
            }
        }
    }
    count
}

/// Waits until the server's subscribers hold at least `channels` channels.
async fn subscribed(admin: &mut redis::aio::MultiplexedConnection, channels: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(admin)
            .await?;
        let held: usize = list
            .split_whitespace()
            .filter_map(|field| field.strip_prefix("sub="))
            .map(|n| n.parse::<usize>().unwrap_or(0))
            .sum();
        if held >= channels {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the waiters subscribed {held} channels of {channels} in 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Prints one line to standard output and flushes it.
fn say(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// Adds `count` no-op tasks with `add_many`, `batch` per call.
///
/// # Errors
/// When an `add_many` fails.
pub async fn add_noops(docket: &Docket, count: usize, batch: usize) -> Result<()> {
    let mut left = count;
    while left > 0 {
        let now = left.min(batch);
        docket.add_many((0..now).map(|_| Noop::new())).await?;
        left -= now;
    }
    Ok(())
}

/// Adds `count` echo tasks, each carrying `bytes` bytes of argument, with `add_many`,
/// `batch` per call.
///
/// # Errors
/// When an `add_many` fails.
pub async fn add_echoes(docket: &Docket, count: usize, bytes: usize, batch: usize) -> Result<()> {
    let data = "x".repeat(bytes);
    let mut left = count;
    while left > 0 {
        let now = left.min(batch);
        docket
            .add_many((0..now).map(|_| Echo::new(data.clone())))
            .await?;
        left -= now;
    }
    Ok(())
}

/// A no-op call due at `when`, for `add_many`.
pub fn noop_at(when: SystemTime) -> docket::Call {
    docket::Call::from(Noop::new()).at(when)
}

/// The tasks of the admission and schedules scenarios: admission rules (a concurrency
/// limit per customer, a rate limit, a debounce) and a perpetual schedule. Each notes
/// its start as the no-op does.
pub mod limited {
    use std::sync::Mutex;
    use std::time::SystemTime;

    use docket::Execution;

    use super::{ChildReport, note_start, unix_micros};
    use crate::stats::percentile;

    /// Start − due of every `bench_tick` run, in microseconds (0 when it started early).
    static TICK_LATENESS_US: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    /// A no-op, one run at a time per customer.
    #[docket::task(name = "bench_customer_noop", concurrency(max = 1, arg = customer))]
    pub async fn customer_noop(customer: u32) {
        let _ = customer;
        note_start();
    }

    /// One run at a time per customer; returns when it started, in microseconds since
    /// the Unix epoch.
    #[docket::task(name = "bench_customer_stamp", concurrency(max = 1, arg = customer))]
    pub async fn customer_stamp(customer: u32) -> u64 {
        let started = unix_micros(SystemTime::now());
        let _ = customer;
        note_start();
        started
    }

    /// At most 1,000 runs in any second (calls over it wait); returns when it started.
    #[docket::task(name = "bench_rate_stamp", rate_limit(1000, per = "1s"))]
    pub async fn rate_stamp() -> u64 {
        let started = unix_micros(SystemTime::now());
        note_start();
        started
    }

    /// Debounced by 100 ms: every call replaces the one waiting; returns when it started.
    #[docket::task(name = "bench_debounced", debounce = "100ms")]
    pub async fn debounced(call: u32) -> u64 {
        let started = unix_micros(SystemTime::now());
        let _ = call;
        note_start();
        started
    }

    /// Runs again every second under its key; notes how late it started.
    #[docket::task(name = "bench_tick", perpetual = "1s")]
    pub async fn tick(execution: Execution) {
        let late = SystemTime::now()
            .duration_since(execution.when())
            .unwrap_or_default();
        note_start();
        let micros = u32::try_from(late.as_micros()).unwrap_or(u32::MAX);
        TICK_LATENESS_US
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(micros);
    }

    /// Puts the `bench_tick` runs' lateness into `report`.
    pub(super) fn report_lateness(report: &mut ChildReport) {
        let late = TICK_LATENESS_US
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if late.is_empty() {
            return;
        }
        let ms: Vec<f64> = late.iter().map(|&us| f64::from(us) / 1e3).collect();
        report.tick_runs = u64::try_from(ms.len()).unwrap_or(u64::MAX);
        report.tick_lateness_p50_ms = percentile(&ms, 50);
        report.tick_lateness_p99_ms = percentile(&ms, 99);
        report.tick_lateness_max_ms = percentile(&ms, 100);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Option<WorkerArgs>> {
        WorkerArgs::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn arguments_read_back_as_they_were_written() {
        let args = WorkerArgs {
            mode: Mode::Memory,
            url: "memory://m".to_owned(),
            name: "m".to_owned(),
            concurrency: 50,
            ttl_ms: 0,
            tasks: 20_000,
        };
        assert_eq!(
            WorkerArgs::parse(args.to_args()).unwrap(),
            Some(args.clone())
        );
        let serve = WorkerArgs {
            mode: Mode::Serve,
            tasks: 0,
            ..args
        };
        assert_eq!(WorkerArgs::parse(serve.to_args()).unwrap(), Some(serve));
        assert_eq!(parse("--help").unwrap(), None);
    }

    #[test]
    fn bad_arguments_are_named() {
        let base = "--url redis://h/0 --name n --concurrency 5 --ttl-ms 0";
        for (line, named) in [
            (format!("--mode drian {base}"), "`--mode drian`"),
            (
                format!("--mode drain {base} --tasks many"),
                "`--tasks many`",
            ),
            (format!("--mode drain {base} --colour red"), "`--colour`"),
            (
                "--mode drain --url u --name n --ttl-ms 0".to_owned(),
                "`--concurrency`",
            ),
            (
                format!("--mode drain {base} --tasks"),
                "`--tasks` needs a value",
            ),
            (
                format!("--mode drain {base} --name m"),
                "`--name` is given twice",
            ),
            (
                "--mode drain --url u --name n --concurrency 5 --ttl-ms -1".to_owned(),
                "`--ttl-ms -1`",
            ),
        ] {
            let error = format!("{:#}", parse(&line).unwrap_err());
            assert!(error.contains(named), "{line}: {error}");
        }
    }

    #[test]
    fn the_gated_mode_reads_back() {
        let args = WorkerArgs {
            mode: Mode::Gated,
            url: "redis://127.0.0.1:6379/0".to_owned(),
            name: "fleet".to_owned(),
            concurrency: 50,
            ttl_ms: 1,
            tasks: 0,
        };
        assert_eq!(WorkerArgs::parse(args.to_args()).unwrap(), Some(args));
    }
}
