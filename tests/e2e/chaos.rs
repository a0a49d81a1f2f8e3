//! The short chaos run: `docket-chaos` (4 producers, 6 worker processes, a
//! Redis with AOF it restarts and workers it SIGKILLs at random) must lose no call whose
//! `add` was acknowledged.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::support::unique;

const CHAOS: &str = env!("CARGO_BIN_EXE_docket-chaos");

/// A seed whose draws restart Redis several times and kill many workers in 60 s (the
/// controller forces one of each should the draws ever give none).
const SEED: &str = "7";

/// Longer than the run can take when all is well (60 s of faults, then the calls still
/// due, bounded by 90 s), so that only a hang reaches it.
const LIMIT: Duration = Duration::from_mins(3);

/// Waits for the controller; past [`LIMIT`] it gets SIGTERM (so it can kill its own
/// children), then SIGKILL.
async fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    if let Ok(status) = tokio::time::timeout(LIMIT, child.wait()).await {
        return status.expect("wait for docket-chaos");
    }
    if let Some(pid) = child.id() {
        let _ = docket_testkit::signal(pid, "TERM");
    }
    if tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
    panic!("docket-chaos did not finish within {LIMIT:?}");
}

/// The text of a file the controller wrote, empty when there is none.
fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_chaos_run_loses_nothing() {
    let dir = std::env::temp_dir().join(unique("docket-chaos-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, stdout, stderr) = (
        dir.join("report.json"),
        dir.join("stdout"),
        dir.join("stderr"),
    );
    let started = Instant::now();
    let mut child = Command::new(CHAOS)
        .args([
            "--duration",
            "60s",
            "--tasks",
            "6000",
            "--seed",
            SEED,
            "--json",
        ])
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start docket-chaos");
    let status = wait_bounded(&mut child).await;
    let (printed, errors) = (read(&stdout), read(&stderr));
    println!(
        "{printed}{errors}docket-chaos took {:.1?}",
        started.elapsed()
    );
    assert!(
        status.success(),
        "docket-chaos: {status}\n{printed}{errors}"
    );

    let report: serde_json::Value = serde_json::from_str(&read(&json))
        .unwrap_or_else(|error| panic!("{error}: no JSON report at {}", json.display()));
    let number = |field: &str| {
        report[field]
            .as_u64()
            .unwrap_or_else(|| panic!("`{field}` missing from {report:#}"))
    };
    assert_eq!(number("lost"), 0, "{report:#}");
    assert!(number("added") >= 5000, "{report:#}");
    assert!(number("completed") >= number("added"), "{report:#}");
    assert!(number("redis_restarts") >= 1, "{report:#}");
    assert!(number("worker_kills") >= 1, "{report:#}");
    assert!(
        number("failed_first_attempts") >= 1,
        "retries ran: {report:#}"
    );
    println!(
        "chaos: {} added, {} lost, {} duplicate runs, {} Redis restarts, {} worker kills",
        number("added"),
        number("lost"),
        number("duplicate_runs"),
        number("redis_restarts"),
        number("worker_kills")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
