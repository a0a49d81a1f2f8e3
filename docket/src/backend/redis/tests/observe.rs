//! Events and the worker registry.

use super::*;

#[tokio::test]
async fn watchers_see_state_and_progress_events() {
    let server = TestServer::start();
    let backend = open(&server, "watch", TTL).await;
    let mut events = backend.subscribe("k").await.unwrap();
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
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
        let event = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event")
            .expect("the stream goes on");
        seen.push(event);
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

#[tokio::test]
async fn heartbeats_register_workers_and_stale_ones_are_pruned() {
    let server = TestServer::start();
    let backend = open(&server, "beat", TTL).await;
    let mut connection = raw(&server).await;
    let long = Duration::from_mins(1);
    backend.heartbeat("w1", &["a", "b"], long).await.unwrap();
    backend.heartbeat("w2", &["b"], long).await.unwrap();
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
    let ttl: i64 = connection.pttl("beat:worker-tasks:w1").await.unwrap();
    assert!(ttl > 50_000, "{ttl}");

    let short = Duration::from_millis(100);
    backend.heartbeat("w3", &["a"], short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let names: Vec<String> = backend
        .workers(Some("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["w1"], "w3's task list expired with it");
    backend.heartbeat("w4", &["a"], short).await.unwrap();
    let registered: Vec<String> = connection.zrange("beat:workers", 0, -1).await.unwrap();
    assert_eq!(registered, ["w4"], "older than 100 ms: pruned");
}

/// `PUBLISH` calls the server has run so far (`INFO commandstats`).
async fn publishes(connection: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_publish:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test]
async fn state_events_are_published_only_while_someone_subscribes() {
    let server = TestServer::start();
    let backend = open(&server, "quiet", TTL).await;
    let mut connection = raw(&server).await;
    let listeners = || redis::cmd("ZCARD").arg("quiet:listeners").clone();

    backend.schedule(&[call("a", Due::Now)]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, 0, "nobody listens");

    let mut events = backend.subscribe("b").await.unwrap();
    let registered: u64 = listeners().query_async(&mut connection).await.unwrap();
    assert_eq!(registered, 1);
    backend.schedule(&[call("b", Due::Now)]).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on");
    assert!(
        matches!(
            event,
            Event::State {
                state: ExecutionState::Queued,
                ..
            }
        ),
        "{event:?}"
    );
    let after = publishes(&mut connection).await;
    assert_eq!(after, 1);
    // A key generated for its call has no follower yet (events are followed per key):
    // queuing it publishes nothing even while others listen.
    let generated = NewTask {
        fresh: true,
        ..call("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Due::Now)
    };
    backend.schedule(&[generated]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, after);

    // Dropping the stream ends the registration; then nothing is published again.
    drop(events);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: u64 = listeners().query_async(&mut connection).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription is still registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backend.schedule(&[call("c", Due::Now)]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, after);
}
