//! `docket-chaos`: the chaos test bed.
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

mod bed;
mod faults;
mod losses;
mod options;
mod produce;
mod report;
mod rng;
mod tally;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::bed::{Bed, connect};
use crate::faults::chaos;
use crate::losses::losses;
use crate::options::Options;
use crate::produce::produce_all;
use crate::report::Report;
use crate::tally::{await_runs, count_lines};

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
