//! The clock, events, progress and the worker registry.

use std::time::SystemTime;

use super::*;
use crate::model::{ProgressState, TaskError, TaskErrorKind};

pub(super) async fn now_is_the_server_clock(store: Store) {
    let backend = store.open("clock", TTL).await;
    let now = backend.now().await.unwrap();
    let local = SystemTime::now();
    let skew = local
        .duration_since(now)
        .unwrap_or_else(|error| error.duration());
    assert!(skew < Duration::from_secs(2), "{skew:?}");
}

pub(super) async fn watchers_see_state_and_progress_events(store: Store) {
    let backend = store.open("watch", TTL).await;
    let mut events = backend.subscribe("k").await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    backend
        .report_progress("k", ProgressUpdate::SetTotal(10))
        .await
        .unwrap();
    backend
        .report_progress("k", ProgressUpdate::Increment(3))
        .await
        .unwrap();
    backend
        .report_progress("k", ProgressUpdate::SetMessage("half \"way\"".into()))
        .await
        .unwrap();
    let progress = ProgressState {
        current: 3,
        total: Some(10),
        message: Some("half \"way\"".into()),
    };
    assert_eq!(backend.progress("k").await.unwrap(), Some(progress.clone()));
    let error = TaskError::new(TaskErrorKind::Failed, "boom");
    backend
        .finish(
            "w1",
            vec![Finish {
                outcome: Outcome::Failed {
                    error: error.clone(),
                },
                ..completed(&delivery, None)
            }],
        )
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.len() < 6 {
        seen.push(next_event(&mut events).await);
    }
    let state = |state, worker: Option<&str>, error: Option<TaskError>| Event::State {
        state,
        generation: 1,
        worker: worker.map(str::to_owned),
        error,
    };
    assert_eq!(
        seen,
        [
            state(ExecutionState::Queued, None, None),
            state(ExecutionState::Running, Some("w1"), None),
            Event::Progress(ProgressState {
                current: 0,
                total: Some(10),
                message: None,
            }),
            Event::Progress(ProgressState {
                current: 3,
                total: Some(10),
                message: None,
            }),
            Event::Progress(progress),
            state(ExecutionState::Failed, None, Some(error)),
        ]
    );
}

/// Progress belongs to a running run: reported for a key that is not running it is
/// dropped, and it is gone once the run ends.
pub(super) async fn progress_is_kept_only_while_its_run_runs(store: Store) {
    let backend = store.open("progress", TTL).await;
    let mut events = backend.subscribe("k").await.unwrap();
    backend
        .report_progress("nobody", ProgressUpdate::Increment(1))
        .await
        .unwrap();
    assert_eq!(backend.progress("nobody").await.unwrap(), None);

    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    backend
        .report_progress("k", ProgressUpdate::SetTotal(5))
        .await
        .unwrap();
    assert_eq!(backend.progress("k").await.unwrap(), None, "only queued");

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    backend
        .report_progress("k", ProgressUpdate::Increment(2))
        .await
        .unwrap();
    let running = ProgressState {
        current: 2,
        total: None,
        message: None,
    };
    assert_eq!(backend.progress("k").await.unwrap(), Some(running.clone()));
    backend
        .finish("w1", vec![completed(&delivery, None)])
        .await
        .unwrap();
    assert_eq!(backend.progress("k").await.unwrap(), None);

    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(next_event(&mut events).await);
    }
    assert_eq!(seen[2], Event::Progress(running), "{seen:?}");
    assert!(
        matches!(
            seen[3],
            Event::State {
                state: ExecutionState::Completed,
                ..
            }
        ),
        "{seen:?}"
    );
}

pub(super) async fn heartbeats_register_workers_and_stale_ones_are_pruned(store: Store) {
    let backend = store.open("beat", TTL).await;
    let long = Duration::from_mins(1);
    backend
        .heartbeat("w1", &["a", "b"], long, Activity::default())
        .await
        .unwrap();
    backend
        .heartbeat("w2", &["b"], long, Activity::default())
        .await
        .unwrap();
    let before = backend.now().await.unwrap();

    let all = backend.workers(None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["w1", "w2"]);
    assert_eq!(all[0].tasks, ["a", "b"]);
    assert!(all[0].last_seen <= before);
    assert!(before.duration_since(all[0].last_seen).unwrap() < Duration::from_secs(5));
    let for_a = backend.workers(Some("a")).await.unwrap();
    assert_eq!(for_a.len(), 1);
    assert_eq!(for_a[0].name, "w1");
    assert_eq!(backend.workers(Some("b")).await.unwrap().len(), 2);
    assert!(backend.workers(Some("c")).await.unwrap().is_empty());
    if let Some(mut raw) = store.redis().await {
        let ttl: i64 = raw.pttl("beat:worker-tasks:w1").await.unwrap();
        assert!(ttl > 50_000, "{ttl}");
    }

    let short = Duration::from_millis(100);
    backend
        .heartbeat("w3", &["a"], short, Activity::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let names: Vec<String> = backend
        .workers(Some("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["w1"], "w3's task list expired with it");
    backend
        .heartbeat("w4", &["a"], short, Activity::default())
        .await
        .unwrap();
    let names: Vec<String> = backend
        .workers(None)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["w4"], "older than 100 ms: pruned");
    if let Some(mut raw) = store.redis().await {
        let registered: Vec<String> = raw.zrange("beat:workers", 0, -1).await.unwrap();
        assert_eq!(registered, ["w4"], "older than 100 ms: pruned");
    }
}

pub(super) async fn workers_are_listed_oldest_heartbeat_first_with_their_tasks_sorted(
    store: Store,
) {
    let backend = store.open("registry", TTL).await;
    // Apart by more than the millisecond Redis keeps heartbeats at.
    let apart = Duration::from_millis(5);
    for (worker, tasks) in [
        ("w2", &["b"][..]),
        ("w1", &["b", "a", "b"][..]),
        ("w3", &["b"][..]),
        ("w2", &["b"][..]),
    ] {
        backend
            .heartbeat(worker, tasks, TTL, Activity::default())
            .await
            .unwrap();
        tokio::time::sleep(apart).await;
    }
    let all = backend.workers(None).await.unwrap();
    let names: Vec<&str> = all.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["w1", "w3", "w2"]);
    assert_eq!(all[0].tasks, ["a", "b"]);
    assert!(
        all.windows(2)
            .all(|pair| pair[0].last_seen < pair[1].last_seen)
    );
    let names: Vec<String> = backend
        .workers(Some("b"))
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["w1", "w3", "w2"]);
}

/// A stopping worker leaves the registry at once, and a sweeper hands the sweep to
/// the others instead of holding it until its lease runs out.
pub(super) async fn a_worker_that_leaves_is_gone_at_once_and_hands_over_the_sweep(store: Store) {
    let backend = store.open("leave", TTL).await;
    backend
        .heartbeat("w1", &["send_email"], TTL, Activity::default())
        .await
        .unwrap();
    backend
        .heartbeat("w2", &["send_email"], TTL, Activity::default())
        .await
        .unwrap();
    backend
        .schedule(&[call("a", When::Now), call("b", When::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("gone").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    // A sweeper holds the sweep for half the idle time: here 500 ms.
    let idle = Duration::from_secs(1);
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    assert_eq!(backend.reclaim("w1", idle, 1).await.unwrap().len(), 1);
    assert!(
        backend.reclaim("w2", idle, 1).await.unwrap().is_empty(),
        "w1 holds the sweep lease"
    );

    backend.leave("w1", &["send_email"]).await.unwrap();
    let names = |workers: Vec<crate::model::ActiveWorker>| -> Vec<String> {
        workers.into_iter().map(|w| w.name).collect()
    };
    assert_eq!(names(backend.workers(None).await.unwrap()), ["w2"]);
    assert_eq!(
        names(backend.workers(Some("send_email")).await.unwrap()),
        ["w2"]
    );
    let taken = backend.reclaim("w2", idle, 1).await.unwrap();
    assert_eq!(taken.len(), 1, "w1 handed the sweep over");
    assert_eq!(taken[0].message.key, "b");
}
