//! Claims and finishes: results, failures, fencing, malformed messages, fire-and-forget.

use super::*;

#[tokio::test]
async fn a_run_ends_completed_with_its_result_and_everything_expiring() {
    let server = TestServer::start();
    let backend = open(&server, "run", TTL).await;
    let mut connection = raw(&server).await;
    let mut task = call("k", Due::Now);
    task.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    backend.schedule(&[task]).await.unwrap();

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert_eq!(delivery.message.key, "k");
    assert_eq!(delivery.message.function, "send_email");
    assert_eq!(delivery.message.args, r#"{"to":"k@example.com"}"#);
    assert_eq!(
        (delivery.message.attempt, delivery.message.generation),
        (1, 1)
    );
    assert!(delivery.message.traceparent.is_some());
    let running = backend.record("k").await.unwrap().unwrap();
    assert_eq!(running.state, ExecutionState::Running);
    assert_eq!(running.worker.as_deref(), Some("w1"));
    assert!(running.started_at.is_some());
    assert_eq!(backend.live_counts().await.unwrap().running, 1);

    backend
        .report_progress("k", ProgressUpdate::Increment(2))
        .await
        .unwrap();
    let outcomes = backend
        .finish("w1", vec![completed(&delivery, Some(r#"{"sent":true}"#))])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded]);

    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    assert!(record.has_result && record.completed_at.is_some());
    assert_eq!(
        backend.result("k", 1).await.unwrap().as_deref(),
        Some(r#"{"sent":true}"#)
    );
    assert_eq!(backend.progress("k").await.unwrap(), None);
    assert!(backend.live_counts().await.unwrap().is_empty());

    assert_eq!(
        keys_of(&mut connection, "run").await,
        BTreeSet::from([
            "run:runs:k".to_owned(),
            "run:results:k:1".to_owned(),
            "run:stream".to_owned(),
        ])
    );
    for key in ["run:runs:k", "run:results:k:1"] {
        let ttl: i64 = connection.pttl(key).await.unwrap();
        assert!((50_000..=60_000).contains(&ttl), "{key}: {ttl} ms");
    }
    let stream_length: usize = connection.xlen("run:stream").await.unwrap();
    assert_eq!(stream_length, 0, "the message was acknowledged and deleted");

    let again = backend
        .finish("w1", vec![completed(&delivery, None)])
        .await
        .unwrap();
    assert_eq!(
        again,
        [FinishOutcome::Fenced],
        "a second finish writes nothing"
    );

    let reused = backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    assert_eq!(reused[0].disposition, Disposition::Scheduled);
    assert_eq!(reused[0].generation, 2);
    let record = backend.record("k").await.unwrap().unwrap();
    assert!(record.worker.is_none() && record.completed_at.is_none() && !record.has_result);
    let ttl: i64 = connection.pttl("run:runs:k").await.unwrap();
    assert_eq!(ttl, -1, "a live record does not expire");
}

#[tokio::test]
async fn a_failed_run_keeps_its_error() {
    let server = TestServer::start();
    let backend = open(&server, "fail", TTL).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    let error = TaskError::new(TaskErrorKind::TimedOut, "took `31s`");
    let outcomes = backend
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
    assert_eq!(outcomes, [FinishOutcome::Recorded]);
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Failed);
    assert_eq!(record.error, Some(error));
    assert!(!record.has_result);
}

#[tokio::test]
async fn replacing_a_running_task_fences_its_finish() {
    let server = TestServer::start();
    let backend = open(&server, "fence", TTL).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let first = claim_one(&mut consumer).await;

    let replaced = backend.schedule(&[replacing("k", Due::Now)]).await.unwrap();
    assert_eq!(replaced[0].disposition, Disposition::Superseded);
    let outcomes = backend
        .finish("w1", vec![completed(&first, Some("1"))])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Superseded]);
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.generation),
        (ExecutionState::Queued, 2)
    );
    assert_eq!(backend.result("k", 1).await.unwrap(), None);

    let second = claim_one(&mut consumer).await;
    assert_eq!(second.message.generation, 2);
}

/// Fire-and-forget deletes records, so generations restart at 1: a run cancelled
/// while running must not end (or steal) the key's next run of the same generation.
#[tokio::test]
async fn a_stale_run_cannot_end_a_newer_run_of_the_same_generation() {
    let server = TestServer::start();
    let backend = open(&server, "reborn", Duration::ZERO).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let old = claim_one(&mut consumer).await;
    assert!(backend.cancel("k").await.unwrap());
    assert!(
        backend.record("k").await.unwrap().is_none(),
        "fire-and-forget"
    );

    let again = backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    assert_eq!(again[0].generation, old.message.generation);
    let new = claim_one(&mut consumer).await;
    assert_ne!(new.id, old.id);

    let outcomes = backend
        .finish("w1", vec![completed(&old, None)])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Superseded]);
    assert_eq!(state_of(&backend, "k").await, Some(ExecutionState::Running));
    let outcomes = backend
        .finish("w1", vec![completed(&new, None)])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded]);
}

#[tokio::test]
async fn stale_and_malformed_messages_are_refused_at_claim() {
    let server = TestServer::start();
    let backend = open(&server, "stale", TTL).await;
    let mut connection = raw(&server).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    claim_one(&mut consumer).await;

    // A copy of generation 0 of `k`, and a message without a function.
    let _: String = connection
        .xadd(
            "stale:stream",
            "*",
            &[
                ("key", "k"),
                ("when", "2025-01-01T00:00:00.000Z"),
                ("function", "send_email"),
                ("args", "{}"),
                ("attempt", "1"),
                ("generation", "0"),
            ],
        )
        .await
        .unwrap();
    let _: String = connection
        .xadd(
            "stale:stream",
            "*",
            &[("key", "nobody"), ("generation", "1")],
        )
        .await
        .unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert!(claimed.deliveries.is_empty());
    assert_eq!(
        claimed.superseded,
        [("k".to_owned(), "send_email".to_owned())]
    );
    let length: usize = connection.xlen("stale:stream").await.unwrap();
    assert_eq!(length, 1, "only the running message of `k` is left");
    assert_eq!(backend.live_counts().await.unwrap().running, 1);
}

#[tokio::test]
async fn a_malformed_message_fails_the_record_that_points_at_it() {
    let server = TestServer::start();
    let backend = open(&server, "malformed", TTL).await;
    let mut connection = raw(&server).await;
    let id: String = connection
        .xadd(
            "malformed:stream",
            "*",
            &[("key", "k"), ("generation", "1")],
        )
        .await
        .unwrap();
    let () = connection
        .hset_multiple(
            "malformed:runs:k",
            &[
                ("state", "QUEUED"),
                ("generation", "1"),
                ("when", "2025-01-01T00:00:00.000Z"),
                ("function", "f"),
                ("args", "{}"),
                ("stream_id", id.as_str()),
            ],
        )
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert!(claimed.deliveries.is_empty() && claimed.superseded.is_empty());
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Failed);
    let error = record.error.unwrap();
    assert!(error.is_bad_arguments(), "{error:?}");
    assert!(error.message().contains(&id), "{}", error.message());
    assert!(
        error.message().contains("is missing"),
        "{}",
        error.message()
    );
    assert!(backend.live_counts().await.unwrap().is_empty());
}

#[tokio::test]
async fn fire_and_forget_keeps_nothing_after_a_run() {
    let server = TestServer::start();
    let backend = open(&server, "fnf", Duration::ZERO).await;
    let mut connection = raw(&server).await;
    backend
        .schedule(&[
            call("a", Due::Now),
            call("b", Due::Now),
            call("c", Due::Now),
        ])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 3);
    backend
        .report_progress("a", ProgressUpdate::SetTotal(3))
        .await
        .unwrap();
    let outcomes = backend
        .finish(
            "w1",
            vec![
                completed(&claimed.deliveries[0], Some("42")),
                Finish {
                    outcome: Outcome::Failed {
                        error: TaskError::new(TaskErrorKind::Failed, "no"),
                    },
                    ..completed(&claimed.deliveries[1], None)
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded, FinishOutcome::Recorded]);
    assert!(backend.cancel("c").await.unwrap());
    assert_eq!(backend.record("a").await.unwrap(), None);
    assert_eq!(backend.result("a", 1).await.unwrap(), None);
    assert_eq!(
        keys_of(&mut connection, "fnf").await,
        BTreeSet::from(["fnf:stream".to_owned()])
    );
}
