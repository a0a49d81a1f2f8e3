//! Admission rules: concurrency slots and their waiters, cooldowns, rate limits.

use super::*;
use crate::backend::{FinishOutcome, Reschedule, Wait};

fn exports(max: u32) -> Slot {
    Slot {
        scope: "exports".to_owned(),
        max,
    }
}

fn take(slot: &Slot, key: &str, lease: Duration) -> AdmissionRule {
    AdmissionRule::Concurrency {
        slot: slot.clone(),
        key: key.to_owned(),
        lease,
    }
}

pub(super) async fn a_concurrency_slot_refuses_a_second_holder_at_its_max(store: Store) {
    let backend = store.open("slots", TTL).await;
    let slot = exports(2);
    let lease = Duration::from_millis(300);
    assert_eq!(backend.admit(take(&slot, "k1", lease)).await.unwrap(), None);
    assert_eq!(backend.admit(take(&slot, "k2", lease)).await.unwrap(), None);
    assert_eq!(
        backend.admit(take(&slot, "k3", lease)).await.unwrap(),
        Some(Duration::ZERO),
        "two hold the two slots"
    );
    assert_eq!(
        backend.admit(take(&slot, "k1", lease)).await.unwrap(),
        None,
        "a holder keeps its slot"
    );
    let other = Slot {
        scope: "imports".to_owned(),
        max: 1,
    };
    assert_eq!(
        backend.admit(take(&other, "k3", lease)).await.unwrap(),
        None
    );

    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        backend.admit(take(&slot, "k3", lease)).await.unwrap(),
        None,
        "the holders' leases ran out"
    );
}

pub(super) async fn a_cooldown_refuses_inside_its_window(store: Store) {
    let backend = store.open("cooldowns", TTL).await;
    let window = Duration::from_millis(300);
    let cooldown = |scope: &str| AdmissionRule::Cooldown {
        scope: scope.to_owned(),
        window,
    };
    assert_eq!(backend.admit(cooldown("digest")).await.unwrap(), None);
    assert_eq!(
        backend.admit(cooldown("digest")).await.unwrap(),
        Some(Duration::ZERO)
    );
    assert_eq!(backend.admit(cooldown("report")).await.unwrap(), None);
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    assert_eq!(backend.admit(cooldown("digest")).await.unwrap(), None);
    assert_eq!(
        backend.admit(cooldown("digest")).await.unwrap(),
        Some(Duration::ZERO),
        "a new window started"
    );
}

pub(super) async fn a_rate_limit_says_how_long_until_there_is_room(store: Store) {
    let backend = store.open("rates", TTL).await;
    let per = Duration::from_secs(1);
    let run = |member: &str| AdmissionRule::RateLimit {
        scope: "api".to_owned(),
        member: member.to_owned(),
        limit: 2,
        per,
    };
    assert_eq!(backend.admit(run("r1")).await.unwrap(), None);
    assert_eq!(backend.admit(run("r2")).await.unwrap(), None);
    let wait = backend
        .admit(run("r3"))
        .await
        .unwrap()
        .expect("two ran in the last second");
    assert!(wait > Duration::ZERO && wait <= per, "{wait:?}");
    assert!(backend.admit(run("r3")).await.unwrap().is_some());
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    assert_eq!(
        backend.admit(run("r3")).await.unwrap(),
        None,
        "the first run left the window"
    );
}

pub(super) async fn a_renewed_slot_outlasts_its_first_lease(store: Store) {
    let backend = store.open("renewed", TTL).await;
    let slot = exports(2);
    let lease = Duration::from_millis(300);
    assert_eq!(backend.admit(take(&slot, "k", lease)).await.unwrap(), None);
    backend
        .renew_slots(
            vec![
                (slot.clone(), "k".to_owned()),
                (slot.clone(), "ghost".to_owned()),
            ],
            Duration::from_mins(1),
        )
        .await
        .unwrap();
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        backend.admit(take(&slot, "other", lease)).await.unwrap(),
        None,
        "renewing a slot nobody holds takes none"
    );
    assert_eq!(
        backend.admit(take(&slot, "third", lease)).await.unwrap(),
        Some(Duration::ZERO),
        "`k` still holds its slot"
    );
}

/// Finishes a run refused for want of a slot: parked as a waiter of `slot`.
fn awaiting(delivery: &Delivery, slot: &Slot) -> Finish {
    Finish {
        outcome: Outcome::Deferred,
        next: Some(Reschedule {
            due: When::Now,
            attempt: delivery.message.attempt,
            args: None,
            traceparent: None,
            wait: Some(Wait::Slot(slot.clone())),
        }),
        ..completed(delivery, None)
    }
}

/// Finishes a run that held a slot of `slot`.
fn releasing(delivery: &Delivery, slot: &Slot) -> Finish {
    Finish {
        release: Some(slot.clone()),
        ..completed(delivery, None)
    }
}

pub(super) async fn waiters_for_a_slot_are_woken_oldest_first_as_holders_release_it(store: Store) {
    let backend = store.open("waiters", TTL).await;
    let slot = exports(1);
    backend
        .schedule(&[
            call("holder", When::Now),
            call("first", When::Now),
            call("second", When::Now),
        ])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    let [holder, first, second] = <[Delivery; 3]>::try_from(claimed.deliveries).unwrap();
    assert_eq!(
        backend.admit(take(&slot, "holder", TTL)).await.unwrap(),
        None
    );
    for waiter in [&first, &second] {
        let key = &waiter.message.key;
        assert_eq!(
            backend.admit(take(&slot, key, TTL)).await.unwrap(),
            Some(Duration::ZERO)
        );
        assert_eq!(
            backend
                .finish("w1", vec![awaiting(waiter, &slot)])
                .await
                .unwrap(),
            [FinishOutcome::Recorded]
        );
        let record = backend.record(key).await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Scheduled, "{key}");
        assert_eq!(record.message.generation, 2);
    }
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (0, 2, 1));
    let promotion = backend.promote_due(10).await.unwrap();
    assert_eq!(
        (promotion.moved, promotion.next_due_in),
        (0, None),
        "a waiter is never due"
    );
    assert_eq!(
        backend.wake_waiters(TTL).await.unwrap(),
        0,
        "the slot is held"
    );

    backend
        .finish("w1", vec![releasing(&holder, &slot)])
        .await
        .unwrap();
    assert_eq!(
        state_of(&*backend, "first").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&*backend, "second").await,
        Some(ExecutionState::Scheduled)
    );
    let woken = claim_one(&mut consumer).await;
    assert_eq!(
        (woken.message.key.as_str(), woken.message.generation),
        ("first", 2)
    );
    assert_eq!(
        backend.admit(take(&slot, "first", TTL)).await.unwrap(),
        None,
        "the slot was kept for it"
    );

    backend
        .finish("w1", vec![releasing(&woken, &slot)])
        .await
        .unwrap();
    assert_eq!(
        state_of(&*backend, "second").await,
        Some(ExecutionState::Queued)
    );
    let woken = claim_one(&mut consumer).await;
    assert_eq!(woken.message.key, "second");
}

/// A run that held a slot frees it however its end is recorded: superseded by a
/// replacement while it ran, it still releases the slot and wakes the oldest waiter.
pub(super) async fn a_superseded_run_still_releases_its_slot(store: Store) {
    let backend = store.open("released", TTL).await;
    let slot = exports(1);
    backend
        .schedule(&[call("holder", When::Now), call("waiter", When::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    let [holder, waiter] = <[Delivery; 2]>::try_from(claimed.deliveries).unwrap();
    assert_eq!(
        backend.admit(take(&slot, "holder", TTL)).await.unwrap(),
        None
    );
    backend
        .finish("w1", vec![awaiting(&waiter, &slot)])
        .await
        .unwrap();

    backend
        .schedule(&[replacing("holder", When::After(Duration::from_mins(1)))])
        .await
        .unwrap();
    assert_eq!(
        backend
            .finish("w1", vec![releasing(&holder, &slot)])
            .await
            .unwrap(),
        [FinishOutcome::Superseded]
    );
    assert_eq!(
        state_of(&*backend, "waiter").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&*backend, "holder").await,
        Some(ExecutionState::Scheduled),
        "the replacement is left alone"
    );
}

/// A holder whose worker died frees its slot by letting its lease run out; the waiter
/// woken into it gets a slot for the lease `wake_waiters` gives, and loses it when
/// that runs out too.
pub(super) async fn a_slot_reserved_for_a_woken_waiter_lapses_with_its_lease(store: Store) {
    let backend = store.open("lapsed", TTL).await;
    let slot = exports(1);
    let lease = Duration::from_millis(300);
    assert_eq!(
        backend.admit(take(&slot, "dead", lease)).await.unwrap(),
        None
    );
    backend
        .schedule(&[call("waiter", When::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let waiter = claim_one(&mut consumer).await;
    backend
        .finish("w1", vec![awaiting(&waiter, &slot)])
        .await
        .unwrap();
    assert_eq!(backend.wake_waiters(lease).await.unwrap(), 0);
    assert_eq!(
        state_of(&*backend, "waiter").await,
        Some(ExecutionState::Scheduled)
    );

    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(backend.wake_waiters(lease).await.unwrap(), 1);
    assert_eq!(
        state_of(&*backend, "waiter").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        backend.admit(take(&slot, "newcomer", lease)).await.unwrap(),
        Some(Duration::ZERO),
        "the slot is kept for the waiter"
    );
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    assert_eq!(
        backend.admit(take(&slot, "newcomer", lease)).await.unwrap(),
        None,
        "the waiter never claimed it"
    );
    assert_eq!(backend.wake_waiters(lease).await.unwrap(), 0);
}
