//! Worker processes that fail: killed mid-run (SIGKILL), stopped past their
//! redelivery timeout (SIGSTOP), killed by their own task every time, or with a clock
//! 30 s fast.

use std::time::Duration;

use docket::ExecutionState;

use super::{Cli, finish, signal, sigterm, text, wait_for_state};
use crate::support::{eventually, record_of};

/// One run of `app_tick`, from its log: (start ms, end ms, generation, redelivered).
fn tick_runs(log: &std::path::Path) -> Vec<(u128, Option<u128>, u64, bool)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: Vec<(u128, Option<u128>, u64, bool)> = Vec::new();
    // Only whole lines: the worker may be writing the last one as we read.
    let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
    for line in whole.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (at, what, generation, redelivered) = (
            parts[0].parse().unwrap(),
            parts[1],
            parts[2].parse().unwrap(),
            parts[3] == "true",
        );
        if what == "start" {
            runs.push((at, None, generation, redelivered));
        } else if let Some(run) = runs
            .iter_mut()
            .rev()
            .find(|r| r.2 == generation && r.1.is_none())
        {
            run.1 = Some(at);
        }
    }
    runs
}

/// kill -9 of the worker running a perpetual task: after the redelivery timeout another
/// worker takes the run over, and the chain goes on as one chain — no two runs overlap,
/// one copy of the key is ever waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_of_a_perpetual_task_leaves_exactly_one_chain() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let log = std::env::temp_dir().join(format!("{}.ticks", cli.target.name));
    let log_text = log.to_string_lossy().into_owned();
    docket
        .add(crate::tasks::AppTick::new(log_text))
        .key("tick")
        .await
        .unwrap();
    let mut first = cli.worker(&["--name", "doomed", "--redelivery-timeout", "1s"]);
    // Wait for a run in progress (a start without its end), past the first one.
    eventually(
        Duration::from_secs(20),
        "a second run of app_tick in progress",
        || {
            let runs = tick_runs(&log);
            runs.len() >= 2 && runs.last().unwrap().1.is_none()
        },
    )
    .await;
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();
    let killed_at = tick_runs(&log).len();

    let second = cli.worker(&["--name", "survivor", "--redelivery-timeout", "1s"]);
    eventually(Duration::from_secs(20), "the chain to go on", || {
        tick_runs(&log).len() >= killed_at + 5
    })
    .await;
    sigterm(&second);
    let output = finish(second, Duration::from_secs(20), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let runs = tick_runs(&log);
    let _ = std::fs::remove_file(&log);
    // The killed run was taken over: same generation, redelivered.
    let killed = runs[killed_at - 1];
    let retaken = runs[killed_at];
    assert!(killed.1.is_none(), "{runs:?}");
    assert_eq!(
        retaken.2, killed.2,
        "the same run was redelivered: {runs:?}"
    );
    assert!(retaken.3, "{runs:?}");
    // One chain: generations go up by one, and each run starts after the last ended.
    for pair in runs[killed_at..].windows(2) {
        assert_eq!(pair[1].2, pair[0].2 + 1, "{runs:?}");
        assert!(
            pair[1].0 >= pair[0].1.unwrap(),
            "overlapping runs: {runs:?}"
        );
    }
    // And exactly one copy of the key waits.
    let mut redis = cli.target.redis.as_ref().unwrap().connection();
    let prefix = cli.target.name.clone();
    let entries: Vec<(String, Vec<(String, String)>)> = ::redis::cmd("XRANGE")
        .arg(format!("{prefix}:stream"))
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    let queued = entries
        .iter()
        .filter(|(_, fields)| fields.iter().any(|(f, v)| f == "key" && v == "tick"))
        .count();
    let parked: Option<f64> = ::redis::cmd("ZSCORE")
        .arg(format!("{prefix}:queue"))
        .arg("tick")
        .query(&mut redis)
        .unwrap();
    assert_eq!(
        queued + usize::from(parked.is_some()),
        1,
        "{entries:?} {parked:?}"
    );
}

/// SIGSTOP a worker mid-run past its redelivery timeout: another worker takes the run
/// over and records it; when the first wakes (SIGCONT) it can neither record, renew nor
/// acknowledge the run it lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_cannot_complete_a_run_it_lost() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let log = std::env::temp_dir().join(format!("{}.slow", cli.target.name));
    let log_text = log.to_string_lossy().into_owned();
    let execution = docket
        .add(crate::tasks::AppSlow::new(log_text, 1_500))
        .key("slow")
        .await
        .unwrap();
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    let stopped = cli.worker(&["--name", "stopped", "--redelivery-timeout", "1s"]);
    eventually(Duration::from_secs(20), "the run to start", || {
        lines().contains("start stopped")
    })
    .await;
    signal(&stopped, "STOP");

    let taker = cli.worker(&["--name", "taker", "--redelivery-timeout", "1s"]);
    wait_for_state(&docket, "slow", ExecutionState::Completed).await;
    assert_eq!(execution.result().await.unwrap(), "taker");
    let before = execution.record().await.unwrap().unwrap();

    signal(&stopped, "CONT");
    eventually(
        Duration::from_secs(20),
        "the stopped worker to resume",
        || lines().contains("end stopped"),
    )
    .await;
    // Its task has returned and its attempt to record the end follows at once; that
    // nothing changes can only be watched for a while: half a second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = execution.record().await.unwrap().unwrap();
    assert_eq!(
        after.worker.as_deref(),
        Some("taker"),
        "the stale worker recorded nothing"
    );
    assert_eq!(after.message.generation, before.message.generation);
    assert_eq!(after.completed_at, before.completed_at);

    sigterm(&stopped);
    sigterm(&taker);
    let stopped = finish(stopped, Duration::from_secs(20), &["stopped"]).await;
    let taker = finish(taker, Duration::from_secs(20), &["taker"]).await;
    assert!(stopped.status.success() && taker.status.success());
    let logs = text(&stopped.stderr);
    assert!(
        logs.contains("taken over by another worker; its end was not recorded"),
        "{logs}"
    );
    // Nothing is left pending: the stale worker could not acknowledge (or keep) it.
    let mut redis = cli.target.redis.as_ref().unwrap().connection();
    let pending: Vec<::redis::Value> = ::redis::cmd("XPENDING")
        .arg(format!("{}:stream", cli.target.name))
        .arg("docket-workers")
        .query(&mut redis)
        .unwrap();
    assert_eq!(
        pending.first(),
        Some(&::redis::Value::Int(0)),
        "{pending:?}"
    );
    let _ = std::fs::remove_file(&log);
}

/// A task that kills its worker process every time is dead-lettered after
/// `--max-deliveries`, and `docket dead-letters` lists, retries and purges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_kills_its_worker_is_dead_lettered_and_listed() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let execution = docket
        .add(crate::tasks::AppPoison::new("boom".into()))
        .key("pill")
        .await
        .unwrap();
    let args = ["--max-deliveries", "2", "--redelivery-timeout", "500ms"];
    for _ in 0..2 {
        let worker = cli.worker(&args);
        let output = finish(worker, Duration::from_secs(20), &["victim"]).await;
        assert!(!output.status.success(), "the pill killed its worker");
        assert!(text(&output.stderr).contains("poison pill: boom"));
    }
    let survivor = cli.worker(&args);
    wait_for_state(&docket, "pill", ExecutionState::Failed).await;
    sigterm(&survivor);
    let output = finish(survivor, Duration::from_secs(20), &["survivor"]).await;
    assert!(output.status.success(), "the third worker survived");

    let listed = cli.ok(&["dead-letters", "ls"]).await;
    assert!(
        listed.contains("pill") && listed.contains("app_poison"),
        "{listed}"
    );
    assert!(
        listed.contains("dead-lettered: delivered 2 times"),
        "{listed}"
    );
    let snapshot = cli.ok(&["snapshot"]).await;
    assert!(snapshot.contains("dead letters:"), "{snapshot}");
    let retried = cli.ok(&["dead-letters", "retry", "pill"]).await;
    assert!(
        retried.starts_with("added app_poison task pill again"),
        "{retried}"
    );
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Queued);
    let missing = cli.run(&["dead-letters", "retry", "pill"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        cli.ok(&["dead-letters", "ls"])
            .await
            .starts_with("no dead letters")
    );
    let purged = cli.ok(&["dead-letters", "purge"]).await;
    assert!(purged.starts_with("purged 0 dead letters"), "{purged}");
    cli.ok(&["clear"]).await;
}

/// libfaketime's preload library, where Debian and other distributions put it.
fn libfaketime() -> std::path::PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "this test needs libfaketime (none of {candidates:?} exists): \
                 `apt-get install -y faketime` (the README's test command, .ci/run, does this)"
            )
        })
}

/// A worker whose clock is 30 s fast (libfaketime) runs tasks when the Redis server's
/// clock says they are due, never early: due times are decided by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_clock_is_30s_fast_does_not_run_tasks_early() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let mut worker = cli.command(&[
        "worker",
        "--minimum-check-interval",
        "20ms",
        "--scheduling-resolution",
        "20ms",
    ]);
    // Only the wall clock is 30 s ahead; timers stay on the real monotonic clock.
    let worker = worker
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+30s")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .spawn()
        .expect("start a worker under libfaketime");

    let clock = docket.add(crate::tasks::AppClock::new()).await.unwrap();
    let worker_now = tokio::time::timeout(Duration::from_secs(20), clock.result())
        .await
        .expect("the worker ran app_clock")
        .unwrap();
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ahead = i128::from(worker_now) - i128::try_from(real_now).unwrap();
    assert!(
        ahead > 29_000,
        "the worker's clock is {ahead} ms ahead, not 30 s"
    );

    let mut executions = Vec::new();
    for delay in [1_500, 3_000] {
        executions.push(
            docket
                .add(crate::tasks::AppClock::new())
                .after(Duration::from_millis(delay))
                .await
                .unwrap(),
        );
    }
    for execution in &executions {
        tokio::time::timeout(Duration::from_secs(20), execution.result())
            .await
            .expect("the scheduled task ran")
            .unwrap();
        let record = record_of(&docket, execution.key()).await;
        let started = record.started_at.expect("a started run");
        let early = record
            .message
            .when
            .duration_since(started)
            .unwrap_or_default();
        let late = started
            .duration_since(record.message.when)
            .unwrap_or_default();
        println!("{}: started {late:?} after due", execution.key());
        assert_eq!(early, Duration::ZERO, "started {early:?} before it was due");
        assert!(late < Duration::from_secs(1), "started {late:?} late");
    }
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(20), &["faketime worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
}
