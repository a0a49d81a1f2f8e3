//! A worker process's start and stop: SIGTERM drains (or, past the drain timeout,
//! leaves runs to the next worker), a worker waits for a server that is not there yet,
//! and a `memory://` worker reads its settings from the environment.

use std::time::{Duration, Instant};

use docket::ExecutionState;
use docket_testkit::LogWatch;

use super::{Cli, WAITING_FOR_REDIS, added_key, finish, sigterm, text, wait_for_state};
use crate::support::{RedisServer, Target, free_port, record_of, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_sleep_finish_then_exits_0() {
    let cli = Cli::new();
    let key = added_key(&cli.ok(&["tasks", "sleep", "3"]).await);
    let docket = cli.docket().await;
    let worker = cli.worker(&["--drain-timeout", "30s"]);
    wait_for_state(&docket, &key, ExecutionState::Running).await;
    let signalled = Instant::now();
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(20), &["worker"]).await;
    let logs = text(&output.stderr);
    assert!(output.status.success(), "{}\n{logs}", output.status);
    assert!(logs.contains("SIGTERM"), "{logs}");
    let execution = docket.get_execution(&key).await.unwrap().unwrap();
    assert_eq!(
        execution.state().await.unwrap(),
        ExecutionState::Completed,
        "the drain let the sleep finish"
    );
    // It waited for the sleep rather than leaving at once.
    assert!(signalled.elapsed() > Duration::from_millis(500), "{logs}");
}

/// SIGTERM during work: the running task finishes within the drain timeout, waiting ones
/// stay queued for the next worker; a task past the drain timeout is left pending and
/// redelivered to the next worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_the_rest_for_the_next_worker() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let keys: Vec<String> = {
        let mut keys = Vec::new();
        for _ in 0..3 {
            keys.push(added_key(&cli.ok(&["tasks", "sleep", "0.5"]).await));
        }
        keys
    };
    let first = cli.worker(&["--concurrency", "1"]);
    let running = wait_for(Duration::from_secs(20), "a sleep to run", || async {
        let mut running = None;
        for key in &keys {
            let state = docket
                .get_execution(key)
                .await
                .unwrap()
                .unwrap()
                .state()
                .await
                .unwrap();
            if state == ExecutionState::Running {
                running = Some(key.clone());
            }
        }
        running.ok_or("nothing ran")
    })
    .await;
    sigterm(&first);
    let output = finish(first, Duration::from_secs(20), &["first"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let state = |key: String| {
        let docket = docket.clone();
        async move {
            docket
                .get_execution(&key)
                .await
                .unwrap()
                .unwrap()
                .state()
                .await
                .unwrap()
        }
    };
    assert_eq!(state(running.clone()).await, ExecutionState::Completed);
    let mut left = 0;
    for key in keys.iter().filter(|k| **k != running) {
        if state(key.clone()).await == ExecutionState::Queued {
            left += 1;
        }
    }
    assert!(left >= 1, "the drained worker left queued tasks alone");

    // A run past the drain timeout is abandoned, then redelivered to the next worker.
    let long = added_key(&cli.ok(&["tasks", "sleep", "3"]).await);
    let impatient = cli.worker(&[
        "--concurrency",
        "10",
        "--drain-timeout",
        "200ms",
        "--redelivery-timeout",
        "1s",
    ]);
    wait_for_state(&docket, &long, ExecutionState::Running).await;
    let stopped_at = Instant::now();
    sigterm(&impatient);
    let output = finish(impatient, Duration::from_secs(20), &["impatient"]).await;
    assert!(output.status.success());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "it left after its drain timeout"
    );
    assert!(
        text(&output.stderr).contains("drain timeout"),
        "{}",
        text(&output.stderr)
    );
    let next = cli.worker(&["--until-finished", "--redelivery-timeout", "1s"]);
    let output = finish(next, Duration::from_secs(30), &["next"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    for key in keys.iter().chain([&long]) {
        assert_eq!(state(key.clone()).await, ExecutionState::Completed, "{key}");
    }
    let record = record_of(&docket, &long).await;
    assert_eq!(record.message.attempt, 1, "a redelivery is not a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_worker_runs_its_own_tasks_from_the_environment() {
    // memory:// is allowed for `worker`: the in-process docket is empty, so
    // --until-finished returns at once; the variables of the guide are read.
    let cli = Cli {
        target: Target::memory(),
    };
    let output = cli
        .command(&["worker", "--until-finished"])
        .env("DOCKET_WORKER_NAME", "env-named")
        .env("DOCKET_WORKER_CONCURRENCY", "3")
        .env("DOCKET_TASKS", "app_greet")
        .spawn()
        .unwrap();
    let output = finish(output, Duration::from_secs(20), &["worker"]).await;
    let logs = text(&output.stderr);
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains("env-named"), "{logs}");
    assert!(logs.contains("concurrency=3"), "{logs}");
    assert!(logs.contains("app_greet"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_redis_waits_for_it() {
    let port = free_port();
    let cli = Cli {
        target: Target {
            name: crate::support::unique("early"),
            url: format!("redis://127.0.0.1:{port}/0"),
            redis: None,
        },
    };
    let mut worker = cli.worker(&["--until-finished", "--reconnection-delay", "100ms"]);
    let log = LogWatch::new(worker.stderr.take().unwrap());
    log.wait_for_line(Duration::from_secs(20), WAITING_FOR_REDIS)
        .await;
    let server = RedisServer::builder().port(port).start();
    let output = finish(worker, Duration::from_secs(20), &["worker"]).await;
    let logs = log.text().await;
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains(WAITING_FOR_REDIS), "{logs}");
    assert!(logs.contains("worker starting"), "{logs}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_redis_exits_0() {
    let cli = Cli {
        target: Target {
            name: crate::support::unique("never"),
            url: format!("redis://127.0.0.1:{}/0", free_port()),
            redis: None,
        },
    };
    let mut worker = cli.worker(&["--reconnection-delay", "100ms"]);
    let log = LogWatch::new(worker.stderr.take().unwrap());
    log.wait_for_line(Duration::from_secs(20), WAITING_FOR_REDIS)
        .await;
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(10), &["worker"]).await;
    let logs = log.text().await;
    assert!(output.status.success(), "{logs}");
    assert!(
        logs.contains("stopping before the docket could be reached"),
        "{logs}"
    );
}
