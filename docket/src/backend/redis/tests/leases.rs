//! Pending messages deleted by hand, a server that restarts, a server that forgot the
//! scripts.

use super::*;
use crate::backend::{AdmissionRule, Slot};

#[tokio::test]
async fn a_deleted_pending_message_is_acknowledged_by_the_sweep() {
    let store = Store::on_redis();
    let backend = store.open("deleted", TTL).await;
    let mut connection = store.redis().await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let held = claim_one(&mut consumer).await;
    let _: usize = connection
        .xdel("deleted:stream", &[held.id.to_string()])
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
    let backend = connect(&server.url(), config("restart", TTL)).await;
    let backend: &dyn crate::backend::Backend = &backend;
    let mut consumer = backend.consumer("w1").await.unwrap();
    let mut cancellations = backend.cancellations().await.unwrap();
    let mut events = backend.subscribe("before").await.unwrap();
    backend
        .schedule(&[call("before", When::Now)])
        .await
        .unwrap();
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
        match backend.schedule(&[call("after", When::Now)]).await {
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
async fn slots_are_renewed_after_the_server_forgot_the_script() {
    let store = Store::on_redis();
    let backend = store.open("slots", TTL).await;
    let mut connection = store.redis().await.unwrap();
    let slot = Slot {
        scope: "exports".to_owned(),
        max: 1,
    };
    let take = AdmissionRule::Concurrency {
        slot: slot.clone(),
        key: "k".to_owned(),
        lease: Duration::from_secs(1),
    };
    assert_eq!(backend.admit(take).await.unwrap(), None, "taken");
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
