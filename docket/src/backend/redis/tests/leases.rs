//! Renewal, the redelivery sweep, and surviving a server restart.

use super::*;

#[tokio::test]
async fn a_sweeper_takes_over_abandoned_messages_and_fences_the_old_worker() {
    let server = TestServer::start();
    let backend = open(&server, "sweep", TTL).await;
    backend
        .schedule(&[call("k", Due::Now), call("other", Due::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    let abandoned = claimed.deliveries[0].clone();
    assert_eq!(abandoned.message.key, "k");

    // The lease lasts as long as the idle time; make it long enough to test.
    let idle = Duration::from_secs(2);
    assert!(
        backend
            .reclaim("w2", Duration::from_mins(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    let taken = backend.reclaim("w2", idle, 1).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert!(
        backend.reclaim("w3", idle, 10).await.unwrap().is_empty(),
        "w2 holds the sweep lease"
    );
    assert_eq!(backend.reclaim("w2", idle, 10).await.unwrap().len(), 1);

    assert!(taken[0].redelivered);
    assert_eq!(taken[0].id, abandoned.id);
    assert_eq!(
        taken[0].message, abandoned.message,
        "same attempt, same generation"
    );
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.worker.as_deref(), Some("w2"));

    assert_eq!(
        backend
            .renew("w1", vec![abandoned.id.clone()])
            .await
            .unwrap(),
        std::slice::from_ref(&abandoned.id)
    );
    assert_eq!(
        backend
            .finish("w1", vec![completed(&abandoned, Some("1"))])
            .await
            .unwrap(),
        [FinishOutcome::Fenced]
    );
    assert_eq!(state_of(&backend, "k").await, Some(ExecutionState::Running));
    assert_eq!(
        backend
            .finish("w2", vec![completed(&taken[0], Some("2"))])
            .await
            .unwrap(),
        [FinishOutcome::Recorded]
    );
    assert_eq!(backend.result("k", 1).await.unwrap().as_deref(), Some("2"));
}

#[tokio::test]
async fn renewal_keeps_a_message_from_the_sweeper() {
    let server = TestServer::start();
    let backend = open(&server, "renew", TTL).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let held = claim_one(&mut consumer).await;
    let idle = Duration::from_secs(1);
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lost = backend
            .renew("w1", vec![held.id.clone(), "0-1".to_owned()])
            .await
            .unwrap();
        assert_eq!(lost, ["0-1"]);
    }
    assert!(backend.reclaim("w2", idle, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_pending_message_is_acknowledged_by_the_sweep() {
    let server = TestServer::start();
    let backend = open(&server, "deleted", TTL).await;
    let mut connection = raw(&server).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let held = claim_one(&mut consumer).await;
    let _: usize = connection
        .xdel("deleted:stream", &[&held.id])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(
        backend
            .reclaim("w2", Duration::from_millis(10), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(backend.live_counts().await.unwrap().running, 0);
}

#[tokio::test]
async fn the_backend_survives_a_server_restart() {
    let mut server = TestServer::start();
    let backend = open(&server, "restart", TTL).await;
    let mut consumer = backend.consumer("w1").await.unwrap();
    let mut cancellations = backend.cancellations().await.unwrap();
    let mut events = backend.subscribe("before").await.unwrap();
    backend.schedule(&[call("before", Due::Now)]).await.unwrap();
    claim_one(&mut consumer).await;

    server.restart();
    // Subscriptions end with their connection, so their owners know to subscribe again.
    let ended = tokio::time::timeout(Duration::from_secs(5), cancellations.next()).await;
    assert_eq!(ended, Ok(None));
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the event stream ends")
    {
        seen.push(event);
    }
    // RUNNING may or may not reach us before the server is killed.
    assert!(
        matches!(
            seen.first(),
            Some(Event::State {
                state: ExecutionState::Queued,
                ..
            })
        ) && seen.len() <= 2,
        "QUEUED (and RUNNING), then the end: {seen:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match backend.schedule(&[call("after", Due::Now)]).await {
            Ok(outcomes) => {
                assert_eq!(outcomes[0].generation, 1);
                break;
            }
            Err(error) => {
                assert!(tokio::time::Instant::now() < deadline, "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    loop {
        match consumer.claim(10, Duration::from_millis(500)).await {
            Ok(claimed) if !claimed.deliveries.is_empty() => {
                assert_eq!(claimed.deliveries[0].message.key, "after");
                break;
            }
            Ok(_) => {}
            Err(error) => {
                assert!(tokio::time::Instant::now() < deadline, "{error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never claimed");
    }
}

#[tokio::test]
async fn a_run_that_keeps_losing_its_worker_is_dead_lettered() {
    let server = TestServer::start();
    let backend = open(&server, "dead", TTL).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    claim_one(&mut consumer).await;
    let idle = Duration::from_millis(5);
    for _ in 1..10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(backend.reclaim("sweeper", idle, 10).await.unwrap().len(), 1);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        backend
            .reclaim("sweeper", idle, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Failed);
    let error = record.error.unwrap();
    assert!(error.message().contains("dead-lettered"), "{error}");
    assert!(backend.live_counts().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_claim_dropped_while_waiting_does_not_hold_up_the_next() {
    let server = TestServer::start();
    let backend = open(&server, "dropped", TTL).await;
    let mut consumer = backend.consumer("w1").await.unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_millis(100),
        consumer.claim(10, Duration::from_mins(1)),
    )
    .await;
    assert!(waiting.is_err(), "nothing to claim yet");
    // Let the server see the abandoned connection close.
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        consumer.claim(10, Duration::from_secs(5)),
    )
    .await
    .expect("not stuck behind the abandoned read")
    .unwrap();
    assert_eq!(next.deliveries.len(), 1);
}

#[tokio::test]
async fn slots_are_renewed_after_the_server_forgot_the_script() {
    let server = TestServer::start();
    let backend = open(&server, "slots", TTL).await;
    let mut connection = raw(&server).await;
    let slot = Slot {
        scope: "exports".to_owned(),
        max: 1,
    };
    let take = AdmissionCheck::Slot {
        slot: slot.clone(),
        key: "k".to_owned(),
        lease: Duration::from_secs(1),
    };
    assert_eq!(backend.admission(take).await.unwrap(), None, "taken");
    let slots = Keys::new("slots").admission("concurrency", "exports");
    let before: f64 = connection.zscore(&slots, "k").await.unwrap();
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    // The renewal pipeline loads the script before its calls.
    backend
        .renew_slots(vec![(slot, "k".to_owned())], Duration::from_mins(1))
        .await
        .unwrap();
    let after: f64 = connection.zscore(&slots, "k").await.unwrap();
    assert!(
        after >= before + 50_000.0,
        "the lease moved a minute on: {before} → {after}"
    );
}
