//! Fleets that change: workers that do not serve a task hand its calls back instead of
//! failing them, the calls wait for a worker that does, and a task nobody serves ends in
//! the dead letters after a grace period — on both backends.

use std::collections::HashMap;
use std::time::Duration;

use docket::{Docket, Execution, ExecutionState, Worker, WorkerBuilder};

use crate::support::{ProbeGuard, eventually, runs, test_worker, wait_for};

/// The task the new workers of a deploy serve and the old ones do not.
#[docket::task]
pub async fn fleet_new_task(probe: String, n: u32, execution: Execution) -> u32 {
    let _run = ProbeGuard::start(&probe, &execution);
    n
}

/// A task every worker serves.
#[docket::task]
pub async fn fleet_old_task(probe: String, n: u32, execution: Execution) -> u32 {
    let _run = ProbeGuard::start(&probe, &execution);
    n
}

/// A worker of the fleet, named, serving `tasks`, with heartbeats (which queue the
/// calls waiting for it) every 100 ms.
fn fleet_worker(docket: &Docket, name: &str, tasks: &[&str]) -> WorkerBuilder {
    test_worker(docket)
        .name(name)
        .tasks(tasks.iter().copied())
        .heartbeat_interval(Duration::from_millis(100))
        .concurrency(5)
}

/// Runs a worker until the returned handle stops it.
fn start(worker: Worker) -> (docket::worker::ShutdownHandle, tokio::task::JoinHandle<()>) {
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await.unwrap() });
    (handle, running)
}

async fn stop(worker: (docket::worker::ShutdownHandle, tokio::task::JoinHandle<()>)) {
    worker.0.shutdown();
    worker.1.await.unwrap();
}

/// How many runs each key had, and on which workers.
fn runs_by_key(probe: &str) -> HashMap<String, Vec<String>> {
    let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
    for run in runs(probe) {
        by_key
            .entry(run.key)
            .or_default()
            .push(run.worker.unwrap_or_default());
    }
    by_key
}

async fn states(docket: &Docket, keys: &[String]) -> HashMap<ExecutionState, usize> {
    let mut states = HashMap::new();
    for key in keys {
        let execution = docket.get_execution(key).await.unwrap().unwrap();
        *states.entry(execution.state().await.unwrap()).or_default() += 1;
    }
    states
}

/// Waits until every one of `keys` has COMPLETED.
async fn all_completed(docket: &Docket, keys: &[String]) {
    wait_for(Duration::from_secs(30), "every call completed", || async {
        let states = states(docket, keys).await;
        if states.get(&ExecutionState::Completed) == Some(&keys.len()) {
            Ok(())
        } else {
            Err(states)
        }
    })
    .await;
}

/// A worker without the task runs alone while 100 calls of it are added: none fails,
/// none is attempted. A worker with the task starts 3 s later and runs each once.
async fn calls_wait_for_a_worker_that_serves_their_task(target: crate::support::Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let old = start(
        fleet_worker(&docket, "old", &["fleet_old_task"])
            .build()
            .unwrap(),
    );
    let mut keys = Vec::new();
    for n in 0..100 {
        let key = format!("new-{n}");
        docket
            .add(FleetNewTask::new(probe.clone(), n))
            .key(&key)
            .await
            .unwrap();
        keys.push(key);
    }
    wait_for(
        Duration::from_secs(20),
        "every call handed back",
        || async {
            let snapshot = docket.snapshot().await.unwrap();
            if snapshot.scheduled.len() == 100 {
                Ok(())
            } else {
                Err((snapshot.queued.len(), snapshot.scheduled.len()))
            }
        },
    )
    .await;
    // The new workers of a deploy come up a while after the first calls of their task.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        runs(&probe).is_empty(),
        "a worker that does not serve it ran it"
    );
    assert_eq!(
        states(&docket, &keys).await,
        HashMap::from([(ExecutionState::Scheduled, 100)]),
        "every call waits: none failed"
    );
    let record = docket.get_execution("new-0").await.unwrap().unwrap();
    assert_eq!(record.attempt(), 1, "handing back is not an attempt");

    let new = start(
        fleet_worker(&docket, "new", &["fleet_new_task", "fleet_old_task"])
            .build()
            .unwrap(),
    );
    all_completed(&docket, &keys).await;
    let by_key = runs_by_key(&probe);
    assert_eq!(by_key.len(), 100);
    for (key, workers) in &by_key {
        assert_eq!(workers, &["new"], "{key} ran once, on the new worker");
    }
    stop(old).await;
    stop(new).await;
}

/// Old and new workers side by side under load: every call of the new task runs on a
/// new worker, every call of an old task on either, each exactly once.
async fn old_and_new_workers_run_side_by_side(target: crate::support::Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let old = start(
        fleet_worker(&docket, "old", &["fleet_old_task"])
            .build()
            .unwrap(),
    );
    let new = start(
        fleet_worker(&docket, "new", &["fleet_new_task", "fleet_old_task"])
            .build()
            .unwrap(),
    );
    let mut calls = Vec::new();
    for n in 0..100 {
        calls.push(docket::Call::from(FleetNewTask::new(probe.clone(), n)).key(format!("new-{n}")));
        calls.push(docket::Call::from(FleetOldTask::new(probe.clone(), n)).key(format!("old-{n}")));
    }
    let executions = docket.add_many(calls).await.unwrap();
    let keys: Vec<String> = executions.iter().map(|e| e.key().to_owned()).collect();
    all_completed(&docket, &keys).await;
    let by_key = runs_by_key(&probe);
    assert_eq!(by_key.len(), 200);
    for (key, workers) in &by_key {
        assert_eq!(workers.len(), 1, "{key} ran once: {workers:?}");
        if key.starts_with("new-") {
            assert_eq!(workers, &["new"], "{key} ran on a new worker");
        }
    }
    let old_ran = by_key
        .iter()
        .filter(|(key, workers)| key.starts_with("old-") && workers == &&["old"])
        .count();
    println!("old tasks run by the old worker: {old_ran} of 100");
    stop(old).await;
    stop(new).await;
}

/// With no worker for a task until the grace period passes, its calls are dead-lettered
/// with an error naming the task, the workers seen and the likely cause; a retry runs
/// them once a worker serves the task.
async fn unserved_calls_are_dead_lettered_after_the_grace_period(target: crate::support::Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let old = start(
        fleet_worker(&docket, "old", &["fleet_old_task"])
            .unserved_grace(Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    for n in 0..5 {
        docket
            .add(FleetNewTask::new(probe.clone(), n))
            .key(format!("gone-{n}"))
            .await
            .unwrap();
    }
    wait_for(Duration::from_secs(20), "five dead letters", || async {
        let letters = docket.dead_letters().await.unwrap();
        if letters.len() == 5 {
            Ok(letters)
        } else {
            Err(letters.len())
        }
    })
    .await;
    for n in 0..5 {
        let key = format!("gone-{n}");
        let execution = docket.get_execution(&key).await.unwrap().unwrap();
        let record = execution.record().await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Failed, "{key}");
        let error = record.error.unwrap();
        assert!(error.is_unknown_task(), "{error:?}");
        let text = error.message();
        assert!(
            text.contains("no worker serving `fleet_new_task` was seen for 1s"),
            "{text}"
        );
        assert!(
            text.contains("old (fail, fleet_old_task, sleep, trace)"),
            "{text}"
        );
        assert!(
            text.contains("docket::tasks!") && text.contains("--tasks"),
            "{text}"
        );
        assert!(text.contains("deploy"), "{text}");
    }
    assert!(runs(&probe).is_empty());

    let new = start(
        fleet_worker(&docket, "new", &["fleet_new_task"])
            .build()
            .unwrap(),
    );
    for n in 0..5 {
        let again = docket
            .retry_dead_letter(&format!("gone-{n}"))
            .await
            .unwrap()
            .expect("a dead letter to retry");
        assert_eq!(
            again
                .typed::<u32>()
                .result_timeout(Duration::from_secs(20))
                .await
                .unwrap(),
            n
        );
    }
    assert!(docket.dead_letters().await.unwrap().is_empty());
    eventually(
        Duration::from_secs(5),
        "each ran once, on the new worker",
        || {
            let by_key = runs_by_key(&probe);
            by_key.len() == 5 && by_key.values().all(|workers| workers == &["new"])
        },
    )
    .await;
    stop(old).await;
    stop(new).await;
}

/// A worker's own fallback takes the calls it does not serve, instead of handing them
/// back.
async fn a_fallback_takes_calls_the_worker_does_not_serve(target: crate::support::Target) {
    let docket = target.docket().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let probe = target.name.clone();
    let again = docket.add(FleetNewTask::new(probe, 5)).await.unwrap();
    let with_fallback = test_worker(&docket)
        .tasks(["fleet_old_task"])
        .fallback(move |execution: docket::Execution| {
            record.lock().unwrap().push(execution.function().to_owned());
            async { Ok::<(), String>(()) }
        })
        .build()
        .unwrap();
    with_fallback.run_until_finished().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["fleet_new_task"]);
    assert_eq!(again.state().await.unwrap(), ExecutionState::Completed);
}

crate::support::on_both_backends!(
    calls_wait_for_a_worker_that_serves_their_task,
    old_and_new_workers_run_side_by_side,
    unserved_calls_are_dead_lettered_after_the_grace_period,
    a_fallback_takes_calls_the_worker_does_not_serve,
);
