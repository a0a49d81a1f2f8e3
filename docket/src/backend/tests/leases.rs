//! Renewal, the redelivery sweep, dead letters, named leases.

use super::*;
use crate::backend::FinishOutcome;

pub(super) async fn a_sweeper_takes_over_abandoned_messages_and_fences_the_old_worker(
    store: Store,
) {
    let backend = store.open("sweep", TTL).await;
    backend
        .schedule(&[call("k", When::Now), call("other", When::Now)])
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
            .reclaim("w3", Duration::from_mins(10), 0)
            .await
            .unwrap()
            .is_empty(),
        "no room: no sweep, and no sweep lease taken"
    );
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
        backend.renew("w1", vec![abandoned.id]).await.unwrap(),
        [abandoned.id]
    );
    assert_eq!(
        backend
            .finish("w1", vec![completed(&abandoned, Some("1"))])
            .await
            .unwrap(),
        [FinishOutcome::Fenced]
    );
    assert_eq!(
        state_of(&*backend, "k").await,
        Some(ExecutionState::Running)
    );
    assert_eq!(
        backend
            .finish("w2", vec![completed(&taken[0], Some("2"))])
            .await
            .unwrap(),
        [FinishOutcome::Recorded]
    );
    assert_eq!(backend.result("k", 1).await.unwrap().as_deref(), Some("2"));
}

pub(super) async fn renewal_keeps_a_message_from_the_sweeper(store: Store) {
    let backend = store.open("renew", TTL).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let held = claim_one(&mut consumer).await;
    // An entry neither backend has handed out.
    let unknown = EntryId::parse("999999-999").unwrap();
    let idle = Duration::from_secs(1);
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let lost = backend.renew("w1", vec![held.id, unknown]).await.unwrap();
        assert_eq!(lost, [unknown]);
    }
    assert!(backend.reclaim("w2", idle, 10).await.unwrap().is_empty());
}

pub(super) async fn a_run_that_keeps_losing_its_worker_is_dead_lettered(store: Store) {
    let backend = store.open("dead", TTL).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
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

pub(super) async fn a_dead_letter_is_listed_until_it_is_forgotten(store: Store) {
    let backend = store
        .open_with(BackendConfig {
            max_deliveries: 1,
            ..config("letters", TTL)
        })
        .await;
    backend
        .schedule(&[call("k", When::Now), call("kept", When::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 2);
    let idle = Duration::from_millis(5);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        backend
            .reclaim("sweeper", idle, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let before = backend.now().await.unwrap();
    let mut letters = backend.dead_letters().await.unwrap();
    letters.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(letters.len(), 2, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.key, "k");
    assert_eq!(letter.function, "send_email");
    assert_eq!(letter.args, r#"{"to":"k@example.com"}"#);
    assert_eq!(letter.error, crate::backend::dead_letter_error(1).message());
    let dead_at = chrono::DateTime::parse_from_rfc3339(&letter.dead_at).unwrap();
    let ago = before
        .duration_since(dead_at.into())
        .unwrap_or_else(|error| error.duration());
    assert!(ago < Duration::from_secs(5), "{ago:?}");

    assert!(backend.forget_dead_letter("k").await.unwrap());
    assert!(!backend.forget_dead_letter("k").await.unwrap());
    let left: Vec<String> = backend
        .dead_letters()
        .await
        .unwrap()
        .into_iter()
        .map(|letter| letter.key)
        .collect();
    assert_eq!(left, ["kept"]);
    assert_eq!(
        state_of(&*backend, "k").await,
        Some(ExecutionState::Failed),
        "forgetting a letter leaves its record"
    );
}

pub(super) async fn a_claim_dropped_while_waiting_does_not_hold_up_the_next(store: Store) {
    let backend = store.open("dropped", TTL).await;
    let mut consumer = backend.consumer("w1").await.unwrap();
    let nothing = tokio::time::timeout(
        Duration::from_secs(1),
        consumer.claim(0, Duration::from_mins(1)),
    )
    .await
    .expect("a claim of no message answers at once")
    .unwrap();
    assert!(nothing.deliveries.is_empty());
    let waiting = tokio::time::timeout(
        Duration::from_millis(100),
        consumer.claim(10, Duration::from_mins(1)),
    )
    .await;
    assert!(waiting.is_err(), "nothing to claim yet");
    // Let the server see the abandoned connection close.
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        consumer.claim(10, Duration::from_secs(5)),
    )
    .await
    .expect("not stuck behind the abandoned read")
    .unwrap();
    assert_eq!(next.deliveries.len(), 1);
}

/// Nobody takes a lease while it runs, its holder included; anyone may once it ran out.
pub(super) async fn a_named_lease_is_held_until_it_runs_out(store: Store) {
    let backend = store.open("locks", TTL).await;
    let lease = Duration::from_millis(300);
    assert!(backend.try_lock("seed:a", "w1", lease).await.unwrap());
    assert!(!backend.try_lock("seed:a", "w2", lease).await.unwrap());
    assert!(!backend.try_lock("seed:a", "w1", lease).await.unwrap());
    assert!(backend.try_lock("seed:b", "w2", lease).await.unwrap());
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert!(backend.try_lock("seed:a", "w2", lease).await.unwrap());
    assert!(!backend.try_lock("seed:a", "w1", lease).await.unwrap());
}
