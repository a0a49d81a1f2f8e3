//! `docket-chaos`: the chaos test bed of issue 9.
//!
//! The controller (the default role) starts its own `redis-server` on a free loopback
//! port with AOF on, spawns worker processes (this binary again, with `worker` as its
//! first argument, which hands the command line to `docket::run_worker()`), and has
//! producer tasks add keyed calls of `chaos_work` while a ticker, every 250 ms, restarts
//! Redis with a 2% chance (SIGKILL, then started again on the same port and data
//! directory) and SIGKILLs a random worker with an 8% chance (respawned at once). Once
//! the run's duration is over it stops the faults, waits until every call whose `add`
//! was acknowledged has run to completion at least once, and reports what was lost and
//! how many runs were duplicates. It exits 0 only when nothing was lost.
//!
//! ```sh
//! docket-chaos --duration 60s --tasks 6000 --seed 7 --json /tmp/chaos.json
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use docket::{Disposition, Docket};
use docket_testkit::RedisServer;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// The docket every process of a run shares.
const DOCKET: &str = "chaos";
/// How often the chaos ticker draws.
const TICK: Duration = Duration::from_millis(250);
/// The chance, in percent per tick, of a Redis restart.
const REDIS_PERCENT: u64 = 2;
/// The chance, in percent per tick, of a worker being killed.
const KILL_PERCENT: u64 = 8;
/// The share of calls, in percent, whose first attempt fails on purpose.
const FAIL_FIRST_PERCENT: u64 = 10;
/// Tasks each worker process runs at once.
const WORKER_CONCURRENCY: &str = "8";
/// How long one `add` may take before the producer tries it again.
const ADD_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause before a failed `add` is tried again.
const ADD_RETRY: Duration = Duration::from_millis(50);
/// How long past its pace a producer keeps trying before it gives up on the rest.
const PRODUCER_GRACE: Duration = Duration::from_mins(1);
/// How long a (re)started `redis-server` has to answer PING.
const REDIS_READY: Duration = Duration::from_secs(30);
/// How long the controller waits, after the faults stop, for every call to have run.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);
/// How long workers have to exit after SIGTERM before they are killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);
/// The whole run may take this much longer than `--duration` before it is abandoned.
const OVERALL_MARGIN: Duration = Duration::from_mins(5);
/// At most this many lost keys are listed and described.
const LOST_LISTED: usize = 20;

const USAGE: &str = "\
usage: docket-chaos [--duration D] [--tasks N] [--workers N] [--producers N] [--seed S]
                    [--json PATH] [--keep]
       docket-chaos worker [docket worker flags]   (what the controller starts)

  --duration D    how long faults are injected; producers add the calls in its first
                  two thirds (default 60s; 90, 1.5s, 250ms, 5m, ...)
  --tasks N       how many calls to add (default 6000)
  --workers N     worker processes (default 6)
  --producers N   producer tasks (default 4)
  --seed S        the seed of every random draw (default 1)
  --json PATH     also write the report as JSON to PATH
  --keep          keep the run's directory (logs, AOF) even when nothing was lost

Exits 0 when every acknowledged call ran at least once, 1 otherwise, 2 on bad usage.
";

/// Sleeps `millis`, fails its first attempt when `fail_first` is set (logging that to
/// `{log}.failed`), and otherwise appends `id` to `log`: one line per completed run.
#[docket::task(name = "chaos_work", retry = Fixed(10, 50ms))]
async fn work(
    id: String,
    fail_first: bool,
    millis: u64,
    log: String,
    execution: docket::Execution,
) -> Result<(), String> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    if fail_first && execution.attempt() == 1 {
        append_line(&format!("{log}.failed"), &id)?;
        return Err(format!("`{id}` fails its first attempt on purpose"));
    }
    append_line(&log, &id)
}

/// Appends `line` and a newline to `path` in one `write` of an `O_APPEND` file, so that
/// lines of concurrent processes never interleave.
fn append_line(path: &str, line: &str) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| format!("cannot open {path}: {error}"))?;
    file.write_all(format!("{line}\n").as_bytes())
        .map_err(|error| format!("cannot append to {path}: {error}"))
}

/// Runs a worker (`docket-chaos worker ...`) or the controller (anything else).
#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|first| first == "worker") {
        exit_with_parent();
        return docket::run_worker().await;
    }
    let options = match Options::parse(&args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("docket-chaos: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!(
        "docket-chaos-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    ));
    let limit = options.duration + OVERALL_MARGIN;
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(limit, control(&options, &dir)) => outcome
            .unwrap_or_else(|_| Err(format!("the run did not end within {limit:?}"))),
        signal = interrupted() => Err(format!("stopped by {signal}")),
    };
    match outcome {
        Ok(report) => finish(&options, &dir, &report),
        Err(message) => {
            eprintln!(
                "docket-chaos: {message}; the run's files are in {}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Prints and writes the report, removes the run's directory when nothing went wrong
/// (unless `--keep`), and says how the process exits.
fn finish(options: &Options, dir: &Path, report: &Report) -> ExitCode {
    report.print();
    if let Some(path) = &options.json {
        let written = serde_json::to_string_pretty(report)
            .map_err(|error| error.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|error| error.to_string()));
        if let Err(error) = written {
            eprintln!("docket-chaos: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.passed() {
        if !options.keep {
            let _ = std::fs::remove_dir_all(dir);
        }
        ExitCode::SUCCESS
    } else {
        println!(
            "the run's files (worker logs, redis log, AOF) are in {}",
            dir.display()
        );
        ExitCode::FAILURE
    }
}

/// In a worker: exits when the controller that started it is gone, so that a controller
/// killed outright leaves no worker behind.
fn exit_with_parent() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(3);
                }
            }
        });
    }
}

/// Resolves on the first SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

/// The controller's command line.
#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    tasks: usize,
    workers: usize,
    producers: usize,
    seed: u64,
    json: Option<PathBuf>,
    keep: bool,
}

impl Options {
    /// Reads the flags; `None` for `--help`, an error naming a bad flag or value.
    fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut options = Self {
            duration: Duration::from_mins(1),
            tasks: 6000,
            workers: 6,
            producers: 4,
            seed: 1,
            json: None,
            keep: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("`{flag}` needs a value"));
            let count = |text: &String| -> Result<usize, String> {
                text.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{flag} {text}`: expected a whole number above 0"))
            };
            match flag.as_str() {
                "--duration" => {
                    let text = value()?;
                    options.duration = docket::cli::parse_duration(text)
                        .map_err(|error| format!("`--duration`: {error}"))?;
                }
                "--tasks" => options.tasks = count(value()?)?,
                "--workers" => options.workers = count(value()?)?,
                "--producers" => options.producers = count(value()?)?,
                "--seed" => {
                    let text = value()?;
                    options.seed = text
                        .parse()
                        .map_err(|_| format!("`--seed {text}`: expected a whole number"))?;
                }
                "--json" => options.json = Some(PathBuf::from(value()?)),
                "--keep" => options.keep = true,
                "-h" | "--help" => return Ok(None),
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        if options.duration < TICK {
            return Err(format!(
                "`--duration`: {:?} is shorter than one chaos tick ({TICK:?})",
                options.duration
            ));
        }
        Ok(Some(options))
    }
}

/// A tiny seeded xorshift64* generator: the same seed gives the same draws.
struct Rng(u64);

impl Rng {
    /// A generator for `seed`, spread by a splitmix64 step (xorshift needs a non-zero
    /// state, and nearby seeds should not give nearby streams).
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A draw in `0..n` (`n` above 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with a chance of `percent` in 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Converts a count for the lints' sake (`usize` always fits on the platforms we run on).
fn wide(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Seconds with one decimal, for reports.
fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10.0).round() / 10.0
}

/// Prints one timestamped line of the run's progress.
fn say(started: Instant, what: &str) {
    println!("[{:7.1}s] {what}", started.elapsed().as_secs_f64());
}

/// Every worker process of a run. Dropping it (a panic or an early return included)
/// SIGKILLs and reaps whatever is still there.
struct Fleet {
    workers: Vec<Option<Child>>,
    /// Per worker slot: how many times it was (re)started, naming its current process.
    incarnations: Vec<u32>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for mut child in self.workers.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One run's directory, server and processes.
struct Bed {
    dir: PathBuf,
    port: u16,
    url: String,
    exe: PathBuf,
    /// The run log: one line per completed run of `chaos_work`.
    log: String,
    /// `redis-server` with AOF on, its data in `redis/` and its output in `redis.log`;
    /// killed when dropped.
    redis: Mutex<RedisServer>,
    fleet: Mutex<Fleet>,
}

impl Bed {
    /// Creates the run's directory, starts `redis-server` (waiting for PING) and the
    /// workers.
    async fn start(options: &Options, dir: &Path) -> Result<Self, String> {
        for sub in ["redis", "workers"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
        }
        let log = dir.join("runs.log");
        File::create(&log).map_err(|error| format!("cannot create the run log: {error}"))?;
        let starting = RedisServer::builder()
            .append_only()
            .dir(dir.join("redis"))
            .log(dir.join("redis.log"))
            .ready_within(REDIS_READY);
        let redis = tokio::task::spawn_blocking(move || starting.try_start())
            .await
            .map_err(|error| format!("starting redis-server failed: {error}"))?
            .map_err(|error| error.to_string())?;
        let bed = Self {
            dir: dir.to_owned(),
            port: redis.port(),
            url: redis.url(),
            exe: std::env::current_exe()
                .map_err(|error| format!("cannot find this executable: {error}"))?,
            log: log.to_string_lossy().into_owned(),
            redis: Mutex::new(redis),
            fleet: Mutex::new(Fleet {
                workers: Vec::new(),
                incarnations: vec![0; options.workers],
            }),
        };
        for slot in 0..options.workers {
            let worker = bed.start_worker(slot, 0)?;
            bed.lock().workers.push(Some(worker));
        }
        Ok(bed)
    }

    /// The processes, whoever held the lock before.
    fn lock(&self) -> MutexGuard<'_, Fleet> {
        self.fleet.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server, whoever held the lock before.
    fn lock_redis(&self) -> MutexGuard<'_, RedisServer> {
        self.redis.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// SIGKILLs `redis-server`, starts it again on the same port and data directory, and
    /// waits for PING. Returns how long the server was unreachable.
    async fn restart_redis(self: Arc<Self>) -> Result<Duration, String> {
        let down = Instant::now();
        tokio::task::spawn_blocking(move || self.lock_redis().try_restart())
            .await
            .map_err(|error| format!("the Redis restart failed: {error}"))?
            .map_err(|error| error.to_string())?;
        Ok(down.elapsed())
    }

    /// Spawns the worker process of `slot` (this executable, `worker`), configured through
    /// the `DOCKET_*` variables only, its output in its own log file.
    fn start_worker(&self, slot: usize, incarnation: u32) -> Result<Child, String> {
        let name = worker_name(slot, incarnation);
        let path = self.dir.join("workers").join(format!("{name}.log"));
        let output = File::create(&path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        let errors = output
            .try_clone()
            .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
        Command::new(&self.exe)
            .arg("worker")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOCKET_URL", &self.url)
            .env("DOCKET_NAME", DOCKET)
            .env("DOCKET_WORKER_NAME", &name)
            .env("DOCKET_WORKER_CONCURRENCY", WORKER_CONCURRENCY)
            .env("DOCKET_WORKER_REDELIVERY_TIMEOUT", "2s")
            .env("DOCKET_WORKER_RECONNECTION_DELAY", "100ms")
            .env("DOCKET_WORKER_MINIMUM_CHECK_INTERVAL", "50ms")
            .env("DOCKET_WORKER_SCHEDULING_RESOLUTION", "50ms")
            .env("DOCKET_WORKER_DRAIN_TIMEOUT", "5s")
            .env("DOCKET_WORKER_SCHEDULE_AUTOMATIC_TASKS", "false")
            .env("DOCKET_LOGGING_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(|error| format!("cannot start worker {name}: {error}"))
    }

    /// SIGKILLs the worker of `slot` and starts its next incarnation; returns the names
    /// of the killed and the new process.
    fn kill_worker(&self, slot: usize) -> Result<(String, String), String> {
        let mut fleet = self.lock();
        let killed = worker_name(slot, fleet.incarnations[slot]);
        if let Some(mut child) = fleet.workers[slot].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        fleet.incarnations[slot] += 1;
        let incarnation = fleet.incarnations[slot];
        fleet.workers[slot] = Some(self.start_worker(slot, incarnation)?);
        Ok((killed, worker_name(slot, incarnation)))
    }

    /// Starts again every worker that exited although nobody killed it; returns what
    /// each one exited with.
    fn respawn_exited(&self) -> Result<Vec<String>, String> {
        let mut fleet = self.lock();
        let mut exits = Vec::new();
        for slot in 0..fleet.workers.len() {
            let Some(Ok(Some(status))) = fleet.workers[slot].as_mut().map(Child::try_wait) else {
                continue;
            };
            exits.push(format!(
                "{} exited by itself ({status})",
                worker_name(slot, fleet.incarnations[slot])
            ));
            fleet.incarnations[slot] += 1;
            let incarnation = fleet.incarnations[slot];
            fleet.workers[slot] = Some(self.start_worker(slot, incarnation)?);
        }
        Ok(exits)
    }

    /// Sends every worker SIGTERM and waits (bounded) for them to drain and exit; the
    /// ones still there are killed. Returns the workers that did not exit with 0.
    async fn stop_workers(&self) -> Vec<String> {
        for child in self.lock().workers.iter().flatten() {
            let _ = docket_testkit::signal(child.id(), "TERM");
        }
        let deadline = Instant::now() + STOP_LIMIT;
        loop {
            let running = self
                .lock()
                .workers
                .iter_mut()
                .flatten()
                .filter_map(|child| child.try_wait().ok())
                .filter(Option::is_none)
                .count();
            if running == 0 || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut fleet = self.lock();
        let mut unclean = Vec::new();
        for slot in 0..fleet.workers.len() {
            let name = worker_name(slot, fleet.incarnations[slot]);
            let Some(mut child) = fleet.workers[slot].take() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) if status.success() => {}
                Ok(Some(status)) => unclean.push(format!("{name} exited with {status} on SIGTERM")),
                _ => unclean.push(format!(
                    "{name} was still running {STOP_LIMIT:?} after SIGTERM"
                )),
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        unclean
    }

    /// SIGKILLs `redis-server`.
    fn stop_redis(&self) {
        self.lock_redis().kill();
    }
}

/// The name of the `incarnation`-th process of worker `slot`.
fn worker_name(slot: usize, incarnation: u32) -> String {
    format!("chaos-w{slot}-{incarnation}")
}

/// Connects a docket handle, trying again for a while should Redis be restarting.
async fn connect(url: &str) -> Result<Docket, String> {
    let deadline = Instant::now() + REDIS_READY;
    loop {
        let connecting = Docket::builder(DOCKET, url).connect();
        match tokio::time::timeout(Duration::from_secs(5), connecting).await {
            Ok(Ok(docket)) => return Ok(docket),
            Ok(Err(error)) if Instant::now() >= deadline => {
                return Err(format!("cannot connect to the docket: {error}"));
            }
            Err(_) if Instant::now() >= deadline => {
                return Err("connecting to the docket timed out".to_owned());
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// What a producer is to add, and when.
struct Plan {
    producer: usize,
    count: usize,
    started: Instant,
    /// The calls are spread evenly over this span from `started`.
    span: Duration,
    /// Past this the producer gives up on the calls it has not added.
    deadline: Instant,
    seed: u64,
    log: String,
}

/// How one producer's adds went.
#[derive(Debug, Default)]
struct Produced {
    /// The keys whose `add` was acknowledged.
    acknowledged: Vec<String>,
    /// Acknowledged calls planned to fail their first attempt.
    fail_first: usize,
    /// `add`s that failed or timed out and were tried again.
    add_errors: usize,
    /// Retried `add`s answered "already scheduled": an earlier try had got through.
    already_scheduled: usize,
    /// Calls never acknowledged (the producer gave up at its deadline).
    abandoned: usize,
    last_error: Option<String>,
}

/// One producer: adds `p{producer}-{i}` at its pace, each until acknowledged.
async fn produce(docket: Docket, plan: Plan) -> Produced {
    let mut rng = Rng::new(plan.seed ^ wide(plan.producer + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let each = plan
        .span
        .checked_div(u32::try_from(plan.count.max(1)).unwrap_or(u32::MAX))
        .unwrap_or_default();
    let mut produced = Produced::default();
    for index in 0..plan.count {
        let key = format!("p{}-{index}", plan.producer);
        let fail_first = rng.percent(FAIL_FIRST_PERCENT);
        let millis = 1 + rng.below(20);
        let due = plan.started + each.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
        tokio::time::sleep_until(due).await;
        let call = || Work::new(key.clone(), fail_first, millis, plan.log.clone());
        if add_until_acknowledged(&docket, &key, call, plan.deadline, &mut produced).await {
            produced.acknowledged.push(key);
            produced.fail_first += usize::from(fail_first);
        } else {
            produced.abandoned = plan.count - index;
            break;
        }
    }
    produced
}

/// Adds one call under `key`, trying again after every error or timeout until it is
/// acknowledged (true) or `deadline` passes (false).
async fn add_until_acknowledged(
    docket: &Docket,
    key: &str,
    call: impl Fn() -> Work,
    deadline: Instant,
    produced: &mut Produced,
) -> bool {
    let mut tried = false;
    loop {
        match tokio::time::timeout(ADD_TIMEOUT, docket.add(call()).key(key)).await {
            Ok(Ok(execution)) => match execution.disposition() {
                Disposition::Scheduled | Disposition::Superseded => return true,
                Disposition::AlreadyScheduled => {
                    produced.already_scheduled += usize::from(tried);
                    return true;
                }
                Disposition::Struck => {
                    produced.last_error = Some(format!("`{key}` was struck"));
                }
            },
            Ok(Err(error)) => produced.last_error = Some(error.to_string()),
            Err(_) => produced.last_error = Some(format!("`add` timed out after {ADD_TIMEOUT:?}")),
        }
        produced.add_errors += 1;
        tried = true;
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(ADD_RETRY).await;
    }
}

/// Starts every producer with its own docket handle and waits for them all.
async fn produce_all(
    bed: &Bed,
    options: &Options,
    started: Instant,
) -> Result<Vec<Produced>, String> {
    let span = options.duration * 2 / 3;
    let mut handles = Vec::new();
    for producer in 0..options.producers {
        let docket = connect(&bed.url).await?;
        let count = options.tasks / options.producers
            + usize::from(producer < options.tasks % options.producers);
        let plan = Plan {
            producer,
            count,
            started,
            span,
            deadline: started + span + PRODUCER_GRACE,
            seed: options.seed,
            log: bed.log.clone(),
        };
        handles.push(tokio::spawn(produce(docket, plan)));
    }
    let mut produced = Vec::new();
    for handle in handles {
        produced.push(
            handle
                .await
                .map_err(|error| format!("a producer failed: {error}"))?,
        );
    }
    Ok(produced)
}

/// What the chaos ticker did.
#[derive(Debug, Default)]
struct Faults {
    ticks: u64,
    redis_restarts: u64,
    worker_kills: u64,
    /// Faults the draws did not produce, injected at the end so that every run has one.
    forced: Vec<&'static str>,
    /// Workers that exited although nobody killed them (then started again).
    unexpected_exits: Vec<String>,
    longest_outage: Duration,
    errors: Vec<String>,
}

impl Faults {
    /// Starts a Redis restart in the background.
    fn begin_restart(
        &mut self,
        bed: &Arc<Bed>,
        started: Instant,
    ) -> JoinHandle<Result<Duration, String>> {
        self.redis_restarts += 1;
        say(started, "SIGKILL redis-server; starting it again");
        tokio::spawn(bed.clone().restart_redis())
    }

    /// Waits for a restart begun with [`Faults::begin_restart`] and notes how it went.
    async fn settle(&mut self, restart: JoinHandle<Result<Duration, String>>, started: Instant) {
        match restart.await {
            Ok(Ok(outage)) => {
                self.longest_outage = self.longest_outage.max(outage);
                say(
                    started,
                    &format!("redis-server answers PING again after {outage:?}"),
                );
            }
            Ok(Err(error)) => self.errors.push(error),
            Err(error) => self
                .errors
                .push(format!("the Redis restart failed: {error}")),
        }
    }

    /// SIGKILLs the worker of `slot` and starts it again.
    fn kill(&mut self, bed: &Bed, slot: usize, started: Instant) {
        self.worker_kills += 1;
        match bed.kill_worker(slot) {
            Ok((killed, new)) => say(started, &format!("SIGKILL {killed}; started {new}")),
            Err(error) => self.errors.push(error),
        }
    }

    /// Notes (and replaces) workers that exited by themselves.
    fn watch_exits(&mut self, bed: &Bed, started: Instant) {
        match bed.respawn_exited() {
            Ok(exits) => {
                for exit in exits {
                    say(started, &format!("unexpected: {exit}; started again"));
                    self.unexpected_exits.push(exit);
                }
            }
            Err(error) => self.errors.push(error),
        }
    }
}

/// The chaos ticker: every 250 ms, a 2% chance of a Redis restart (at most one at a
/// time) and an 8% chance of a worker SIGKILL, until told to stop. A run whose draws
/// gave no Redis restart or no worker kill gets one of each at the end.
async fn chaos(
    bed: Arc<Bed>,
    seed: u64,
    workers: usize,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Faults {
    let mut rng = Rng::new(seed);
    let mut faults = Faults::default();
    let mut restart: Option<JoinHandle<Result<Duration, String>>> = None;
    let mut ticker = tokio::time::interval_at(Instant::now() + TICK, TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        // Three draws every tick, used or not: the same seed, the same faults.
        let restart_redis = rng.percent(REDIS_PERCENT);
        let kill = rng.percent(KILL_PERCENT);
        let victim = usize::try_from(rng.below(wide(workers))).unwrap_or(0);
        faults.ticks += 1;
        if let Some(done) = restart.take_if(|handle| handle.is_finished()) {
            faults.settle(done, started).await;
        }
        if restart_redis && restart.is_none() {
            restart = Some(faults.begin_restart(&bed, started));
        }
        if kill {
            faults.kill(&bed, victim, started);
        }
        faults.watch_exits(&bed, started);
    }
    if let Some(pending) = restart.take() {
        faults.settle(pending, started).await;
    }
    if faults.redis_restarts == 0 {
        faults.forced.push("redis restart");
        let forced = faults.begin_restart(&bed, started);
        faults.settle(forced, started).await;
    }
    if faults.worker_kills == 0 {
        faults.forced.push("worker kill");
        faults.kill(&bed, 0, started);
    }
    faults
}

/// What the run log says about the acknowledged keys.
#[derive(Debug, Default)]
struct Tally {
    /// Acknowledged keys that ran at least once.
    completed: usize,
    /// Runs beyond the first of an acknowledged key.
    duplicate_runs: usize,
    /// Runs of keys that were never acknowledged.
    unacknowledged_runs: usize,
    /// Acknowledged keys that never ran, sorted.
    missing: Vec<String>,
}

/// How many times each line appears in `path`; a last line without its newline (being
/// written) is left out.
fn count_lines(path: &str) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut counts = HashMap::new();
    for line in complete.lines().filter(|line| !line.is_empty()) {
        *counts.entry(line.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Compares the run log with the acknowledged keys.
fn tally(log: &str, acknowledged: &HashSet<String>) -> Tally {
    let counts = count_lines(log);
    let mut tally = Tally::default();
    for (key, runs) in &counts {
        if acknowledged.contains(key) {
            tally.completed += 1;
            tally.duplicate_runs += runs - 1;
        } else {
            tally.unacknowledged_runs += runs;
        }
    }
    tally.missing = acknowledged
        .iter()
        .filter(|key| !counts.contains_key(*key))
        .cloned()
        .collect();
    tally.missing.sort_by_key(|key| natural(key));
    tally
}

/// A sort key for `p{producer}-{index}`: by producer, then index.
fn natural(key: &str) -> (usize, usize, String) {
    let parsed = key
        .strip_prefix('p')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(p, i)| Some((p.parse().ok()?, i.parse().ok()?)));
    let (producer, index) = parsed.unwrap_or((usize::MAX, usize::MAX));
    (producer, index, key.to_owned())
}

/// Waits (at most [`DRAIN_LIMIT`]) until every acknowledged key is in the run log or
/// dead-lettered, replacing workers that exit meanwhile.
async fn await_runs(
    bed: &Bed,
    docket: &Docket,
    acknowledged: &HashSet<String>,
    faults: &mut Faults,
    started: Instant,
) -> Tally {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut reported = usize::MAX;
    loop {
        let tally = tally(&bed.log, acknowledged);
        if tally.missing.is_empty() || Instant::now() >= deadline {
            return tally;
        }
        if let Ok(letters) = dead_letters(docket).await {
            let dead: HashSet<&str> = letters.iter().map(|letter| letter.key.as_str()).collect();
            if tally.missing.iter().all(|key| dead.contains(key.as_str())) {
                return tally;
            }
        }
        if tally.missing.len() != reported && tally.missing.len() <= 10 {
            say(started, &format!("waiting for {:?}", tally.missing));
            reported = tally.missing.len();
        }
        faults.watch_exits(bed, started);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What Redis and the worker logs hold for a key that never ran, one line.
async fn describe(bed: &Bed, key: &str) -> String {
    let mut parts = Vec::new();
    let client = redis::Client::open(bed.url.as_str());
    let connection = match client {
        Ok(client) => client.get_multiplexed_async_connection().await.ok(),
        Err(_) => None,
    };
    if let Some(mut connection) = connection {
        let record: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{DOCKET}:runs:{key}"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("record {record:?}"));
        let due: Option<String> = redis::cmd("ZSCORE")
            .arg(format!("{DOCKET}:queue"))
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("queue score {due:?}"));
        let parked: bool = redis::cmd("EXISTS")
            .arg(format!("{DOCKET}:{key}"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("parked copy {parked}"));
        parts.push(stream_entries(&mut connection, key).await);
    } else {
        parts.push("(cannot connect to Redis)".to_owned());
    }
    parts.push(log_mentions(&bed.dir.join("workers"), key));
    format!("{key}: {}", parts.join("; "))
}

/// The stream messages carrying `key`, with their pending entries (owner, idle time,
/// deliveries).
async fn stream_entries(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    let stream = format!("{DOCKET}:stream");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .unwrap_or_default();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("docket-workers")
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query_async(connection)
        .await
        .unwrap_or_default();
    let mut found = Vec::new();
    for entry in entries.ids {
        if entry.get::<String>("key").as_deref() != Some(key) {
            continue;
        }
        let owner = pending.iter().find(|p| p.0 == entry.id).map_or_else(
            || "not pending".to_owned(),
            |(_, consumer, idle, deliveries)| {
                format!("pending for {consumer}, idle {idle} ms, delivered {deliveries}x")
            },
        );
        found.push(format!(
            "{} (generation {:?}, attempt {:?}): {owner}",
            entry.id,
            entry.get::<String>("generation"),
            entry.get::<String>("attempt")
        ));
    }
    format!("stream messages {found:?}")
}

/// The worker log lines that name `key` (as a whole word), by log file.
fn log_mentions(dir: &Path, key: &str) -> String {
    let mut mentions = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let name = file
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        for line in text.lines().filter(|line| names_key(line, key)) {
            mentions.push(format!("{name}: {}", line.trim()));
        }
    }
    mentions.truncate(12);
    format!("worker log lines {mentions:?}")
}

/// Whether `line` has `key` as a whole word (`p0-1` is not in `p0-12`).
fn names_key(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + key.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        !part(before) && !part(after)
    })
}

/// The outcome of a run, as printed and written as JSON.
#[derive(Debug, serde::Serialize)]
struct Report {
    requested: usize,
    added: usize,
    completed: usize,
    lost: usize,
    duplicate_runs: usize,
    redis_restarts: u64,
    worker_kills: u64,
    failed_first_attempts: usize,
    elapsed_s: f64,
    seed: u64,
    chaos_ticks: u64,
    forced_faults: Vec<&'static str>,
    longest_redis_outage_ms: u64,
    planned_fail_first: usize,
    add_errors: usize,
    already_scheduled_on_retry: usize,
    unacknowledged_runs: usize,
    drain_s: f64,
    lost_keys: Vec<String>,
    lost_details: Vec<String>,
    dead_letters: Vec<String>,
    unexpected_worker_exits: Vec<String>,
    unclean_worker_stops: Vec<String>,
    errors: Vec<String>,
}

impl Report {
    /// Nothing lost, everything added, no fault that could not be injected.
    fn passed(&self) -> bool {
        self.lost == 0 && self.added >= self.requested && self.errors.is_empty()
    }

    /// Prints the report as a table, then whatever needs a closer look.
    fn print(&self) {
        let rows: [(&str, String); 14] = [
            ("added", format!("{} of {}", self.added, self.requested)),
            ("completed", self.completed.to_string()),
            ("lost", self.lost.to_string()),
            ("duplicate runs", self.duplicate_runs.to_string()),
            ("redis restarts", self.redis_restarts.to_string()),
            ("worker kills", self.worker_kills.to_string()),
            (
                "failed first attempts",
                self.failed_first_attempts.to_string(),
            ),
            ("planned to fail first", self.planned_fail_first.to_string()),
            ("add errors (retried)", self.add_errors.to_string()),
            (
                "already scheduled on retry",
                self.already_scheduled_on_retry.to_string(),
            ),
            (
                "longest redis outage",
                format!("{} ms", self.longest_redis_outage_ms),
            ),
            ("chaos ticks", self.chaos_ticks.to_string()),
            ("drain after chaos", format!("{:.1} s", self.drain_s)),
            ("elapsed", format!("{:.1} s", self.elapsed_s)),
        ];
        println!("\ndocket-chaos report (seed {})", self.seed);
        println!("+----------------------------+-----------------+");
        for (name, value) in rows {
            println!("| {name:<26} | {value:>15} |");
        }
        println!("+----------------------------+-----------------+");
        let lists = [
            (
                "faults forced (the draws gave none)",
                self.forced_faults.iter().map(|f| (*f).to_owned()).collect(),
            ),
            ("lost keys", self.lost_keys.clone()),
            ("lost keys in detail", self.lost_details.clone()),
            ("dead letters", self.dead_letters.clone()),
            (
                "workers that exited by themselves",
                self.unexpected_worker_exits.clone(),
            ),
            (
                "workers that did not stop cleanly",
                self.unclean_worker_stops.clone(),
            ),
            ("errors", self.errors.clone()),
        ];
        for (title, items) in lists {
            if !items.is_empty() {
                println!("{title}:");
                for item in &items {
                    println!("  {item}");
                }
            }
        }
        if self.unacknowledged_runs > 0 {
            println!(
                "runs of keys never acknowledged: {}",
                self.unacknowledged_runs
            );
        }
        println!("{}", if self.passed() { "PASS" } else { "FAIL" });
    }
}

/// The docket's dead letters. A handle's first command after a Redis restart fails
/// (its connection is re-opened behind it), so a few tries are allowed.
async fn dead_letters(docket: &Docket) -> Result<Vec<docket::DeadLetter>, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match tokio::time::timeout(Duration::from_secs(5), docket.dead_letters()).await
        {
            Ok(Ok(letters)) => return Ok(letters),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        if tries >= 5 {
            return Err(format!("cannot list the dead letters: {error}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The acknowledged keys that never ran or were dead-lettered (never-ran first), a
/// description of the first of them, and every dead letter.
async fn losses(
    bed: &Bed,
    docket: &Docket,
    tally: &Tally,
    acknowledged: &HashSet<String>,
) -> Result<(Vec<String>, Vec<String>, Vec<docket::DeadLetter>), String> {
    let dead_letters = dead_letters(docket).await?;
    let mut lost: Vec<String> = tally.missing.clone();
    for letter in &dead_letters {
        if acknowledged.contains(&letter.key) && !lost.contains(&letter.key) {
            lost.push(letter.key.clone());
        }
    }
    let mut details = Vec::new();
    for key in lost.iter().take(LOST_LISTED) {
        details.push(describe(bed, key).await);
    }
    Ok((lost, details, dead_letters))
}

/// The whole run: start everything, produce under chaos, wait for the runs, stop, and
/// report.
async fn control(options: &Options, dir: &Path) -> Result<Report, String> {
    let started = Instant::now();
    let bed = Arc::new(Bed::start(options, dir).await?);
    say(
        started,
        &format!(
            "redis-server on 127.0.0.1:{} (AOF), {} workers, {} producers adding {} calls; files in {}",
            bed.port,
            options.workers,
            options.producers,
            options.tasks,
            dir.display()
        ),
    );
    let docket = connect(&bed.url).await?;
    let (stop, stopped) = watch::channel(false);
    let chaos = tokio::spawn(chaos(
        bed.clone(),
        options.seed,
        options.workers,
        started,
        stopped,
    ));
    let produced = produce_all(&bed, options, started).await;
    if produced.is_ok() {
        say(started, "every producer is done");
        tokio::time::sleep_until(started + options.duration).await;
    }
    stop.send_replace(true);
    let mut faults = chaos
        .await
        .map_err(|error| format!("the chaos ticker failed: {error}"))?;
    let produced = produced?;
    say(
        started,
        "faults stopped; waiting for every acknowledged call to have run",
    );
    let acknowledged: HashSet<String> = produced
        .iter()
        .flat_map(|p| p.acknowledged.iter().cloned())
        .collect();
    let draining = Instant::now();
    let tally = await_runs(&bed, &docket, &acknowledged, &mut faults, started).await;
    let drain = draining.elapsed();
    let unclean = bed.stop_workers().await;
    let (lost, details, dead_letters) = losses(&bed, &docket, &tally, &acknowledged).await?;
    bed.stop_redis();
    let mut errors = std::mem::take(&mut faults.errors);
    errors.extend(produced.iter().filter(|p| p.abandoned > 0).map(|p| {
        format!(
            "a producer gave up on {} calls; its last error: {:?}",
            p.abandoned, p.last_error
        )
    }));
    Ok(Report {
        requested: options.tasks,
        added: acknowledged.len(),
        completed: tally.completed,
        lost: lost.len(),
        duplicate_runs: tally.duplicate_runs,
        redis_restarts: faults.redis_restarts,
        worker_kills: faults.worker_kills,
        failed_first_attempts: count_lines(&format!("{}.failed", bed.log)).values().sum(),
        elapsed_s: seconds(started.elapsed()),
        seed: options.seed,
        chaos_ticks: faults.ticks,
        forced_faults: faults.forced,
        longest_redis_outage_ms: u64::try_from(faults.longest_outage.as_millis())
            .unwrap_or(u64::MAX),
        planned_fail_first: produced.iter().map(|p| p.fail_first).sum(),
        add_errors: produced.iter().map(|p| p.add_errors).sum(),
        already_scheduled_on_retry: produced.iter().map(|p| p.already_scheduled).sum(),
        unacknowledged_runs: tally.unacknowledged_runs,
        drain_s: seconds(drain),
        lost_keys: lost.into_iter().take(LOST_LISTED).collect(),
        lost_details: details,
        dead_letters: dead_letters
            .iter()
            .map(|letter| {
                format!(
                    "{} ({}): {} at {}",
                    letter.key, letter.function, letter.error, letter.dead_at
                )
            })
            .collect(),
        unexpected_worker_exits: faults.unexpected_exits,
        unclean_worker_stops: unclean,
        errors,
    })
}
