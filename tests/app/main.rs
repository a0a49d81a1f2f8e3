//! An application binary as users write one: its own tasks, and `main` handing the
//! command line to docket. The end-to-end suite drives it as a real process.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records a greeting; the suite checks it ran through the worker command.
#[docket::task(name = "app_greet")]
async fn greet(name: String) -> String {
    format!("hello, {name}")
}

/// A perpetual task every 300 ms that logs its start and end to `log`, taking 200 ms:
/// the suite kills its worker mid-run and reads the log for overlapping chains.
#[docket::task(name = "app_tick", perpetual = "300ms")]
async fn tick(log: String, execution: docket::Execution) -> std::io::Result<()> {
    let line = |what: &str| -> std::io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        append_line(
            &log,
            &format!(
                "{} {what} {} {}",
                now.as_millis(),
                execution.generation(),
                execution.redelivered()
            ),
        )
    };
    line("start")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    line("end")
}

/// Appends `line` and a newline to the file at `path` in one `write`, so that a reader
/// polling the file (or a kill -9 between two writes) never sees half a line.
fn append_line(path: &str, line: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(format!("{line}\n").as_bytes())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker().await
}

/// Fails on both of its attempts (a retry 50 ms after the first).
#[docket::task(name = "app_flaky", retry = Fixed(2, 50ms))]
async fn flaky(n: u32) -> Result<(), String> {
    Err(format!("flaky call {n} failed"))
}

/// Logs its start and end (with the worker's name) to `log`, sleeping `millis` between.
#[docket::task(name = "app_slow")]
async fn slow(log: String, millis: u64, worker: docket::WorkerInfo) -> std::io::Result<String> {
    let line = |what: &str| append_line(&log, &format!("{what} {}", worker.name()));
    line("start")?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    line("end")?;
    Ok(worker.name().to_owned())
}

/// Kills the worker that runs it: a poison pill.
#[docket::task(name = "app_poison")]
async fn poison(note: String) {
    eprintln!("poison pill: {note}");
    std::process::abort();
}

/// The worker's own wall clock, in milliseconds since the Unix epoch: the suite runs a
/// worker under libfaketime and checks its clock really is off.
#[docket::task(name = "app_clock")]
async fn clock() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}
