//! Calls handed back by a worker that does not serve their task: parked until a serving
//! worker's heartbeat queues them, listed, and given up on only while nobody serves them.

use super::*;
use crate::backend::{Reschedule, Wait};
use crate::model::{Disposition, TaskError, TaskErrorKind};

/// Finishes a claimed run as handed back: not run, waiting for a worker serving its task.
fn handed_back(delivery: &Delivery) -> Finish {
    Finish {
        outcome: Outcome::Deferred,
        next: Some(Reschedule {
            due: When::Now,
            attempt: delivery.message.attempt,
            args: None,
            traceparent: None,
            wait: Some(Wait::Server),
        }),
        ..completed(delivery, None)
    }
}

/// Claims `count` calls as `worker` and hands them all back.
async fn hand_back(backend: &dyn Backend, worker: &str, count: usize) -> Vec<Delivery> {
    let mut consumer = backend.consumer(worker).await.unwrap();
    let claimed = consumer.claim(count, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), count, "{claimed:?}");
    let ends = claimed.deliveries.iter().map(handed_back).collect();
    let outcomes = backend.finish(worker, ends).await.unwrap();
    assert!(
        outcomes.iter().all(|o| *o == FinishOutcome::Recorded),
        "{outcomes:?}"
    );
    claimed.deliveries
}

pub(super) async fn a_handed_back_call_waits_until_a_worker_serving_its_task_beats(store: Store) {
    let backend = store.open("unserved", TTL).await;
    backend
        .schedule(&[call("a", When::Now), call("b", When::Now)])
        .await
        .unwrap();
    let before = backend.now().await.unwrap();
    let first = hand_back(&*backend, "old", 2).await;

    for key in ["a", "b"] {
        let record = backend.record(key).await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Scheduled, "{key}");
        assert_eq!(record.message.generation, 2, "{key}");
        assert_eq!(record.message.attempt, 1, "handing back is not an attempt");
    }
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (0, 2, 0));
    let waiting = backend.unserved().await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(
        (waiting[0].task.as_str(), waiting[0].waiting),
        ("send_email", 2)
    );
    assert!(
        epoch_millis(waiting[0].since) >= epoch_millis(before),
        "handed back after {before:?}: {waiting:?}"
    );

    // Nothing comes back to a reader while nobody who serves the task beats.
    let mut old = backend.consumer("old").await.unwrap();
    assert!(
        old.claim(10, Duration::ZERO)
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    backend
        .heartbeat("old", &["other"], TTL, Activity::default())
        .await
        .unwrap();
    assert!(
        old.claim(10, Duration::ZERO)
            .await
            .unwrap()
            .deliveries
            .is_empty()
    );
    assert_eq!(backend.live_counts().await.unwrap().scheduled, 2);

    let mut events = backend.subscribe("a").await.unwrap();
    backend
        .heartbeat("new", &["send_email"], TTL, Activity::default())
        .await
        .unwrap();
    assert_eq!(backend.live_counts().await.unwrap().queued, 2);
    assert!(backend.unserved().await.unwrap().is_empty());
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on");
    assert!(
        matches!(
            event,
            Event::State {
                state: ExecutionState::Queued,
                generation: 2,
                ..
            }
        ),
        "{event:?}"
    );
    let mut new = backend.consumer("new").await.unwrap();
    let claimed = new.claim(10, Duration::from_secs(2)).await.unwrap();
    let keys: Vec<&str> = claimed
        .deliveries
        .iter()
        .map(|d| d.message.key.as_str())
        .collect();
    assert_eq!(keys, ["a", "b"], "oldest first");
    for (delivery, earlier) in claimed.deliveries.iter().zip(&first) {
        assert_eq!(delivery.message.generation, earlier.message.generation + 1);
        assert_eq!(delivery.message.attempt, earlier.message.attempt);
        assert_eq!(delivery.message.args, earlier.message.args);
    }
    // Run and ended as any call: nothing of the wait is left behind.
    let ends = claimed
        .deliveries
        .iter()
        .map(|d| completed(d, None))
        .collect();
    backend.finish("new", ends).await.unwrap();
    assert!(backend.live_counts().await.unwrap().is_empty());
    assert!(backend.unserved().await.unwrap().is_empty());
    if let Some(mut raw) = store.redis().await {
        let waiting: Vec<String> = raw.smembers("unserved:unserved").await.unwrap();
        assert!(waiting.is_empty(), "{waiting:?}");
        let record: std::collections::HashMap<String, String> =
            raw.hgetall("unserved:runs:a").await.unwrap();
        assert!(!record.contains_key("unserved_ms"), "{record:?}");
    }
}

pub(super) async fn calls_no_worker_serves_are_abandoned_only_past_their_time(store: Store) {
    let backend = store.open("abandon", TTL).await;
    let error = TaskError::new(TaskErrorKind::UnknownTask, "nobody serves `send_email`");
    backend
        .heartbeat("new", &["send_email"], TTL, Activity::default())
        .await
        .unwrap();
    backend
        .schedule(&[call("a", When::Now), call("b", When::Now)])
        .await
        .unwrap();
    hand_back(&*backend, "old", 2).await;
    let now = backend.now().await.unwrap();

    assert_eq!(
        backend
            .abandon_unserved("send_email", now, error.clone())
            .await
            .unwrap(),
        0,
        "a live worker serves the task: its next heartbeat queues them"
    );
    backend.leave("new", &["send_email"]).await.unwrap();
    let long_ago = now - Duration::from_mins(1);
    assert_eq!(
        backend
            .abandon_unserved("send_email", long_ago, error.clone())
            .await
            .unwrap(),
        0,
        "handed back after the cutoff"
    );
    assert_eq!(
        backend
            .abandon_unserved("other", now, error.clone())
            .await
            .unwrap(),
        0,
        "another task waits for nothing"
    );
    assert_eq!(
        backend
            .abandon_unserved("send_email", now, error.clone())
            .await
            .unwrap(),
        2
    );
    for key in ["a", "b"] {
        let record = backend.record(key).await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Failed, "{key}");
        assert_eq!(record.error.as_ref(), Some(&error), "{key}");
    }
    let mut letters = backend.dead_letters().await.unwrap();
    letters.sort_by(|x, y| x.key.cmp(&y.key));
    let keys: Vec<&str> = letters.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(letters[0].function, "send_email");
    assert_eq!(letters[0].args, r#"{"to":"a@example.com"}"#);
    assert_eq!(letters[0].error, error.message());
    assert!(backend.live_counts().await.unwrap().is_empty());
    assert!(backend.unserved().await.unwrap().is_empty());
    assert_eq!(
        backend
            .abandon_unserved("send_email", now, error)
            .await
            .unwrap(),
        0,
        "given up on once"
    );
}

pub(super) async fn a_waiting_call_cancelled_or_replaced_no_longer_waits(store: Store) {
    let backend = store.open("unwait", TTL).await;
    backend
        .schedule(&[
            call("cancelled", When::Now),
            call("replaced", When::Now),
            call("kept", When::Now),
        ])
        .await
        .unwrap();
    hand_back(&*backend, "old", 3).await;
    assert!(backend.cancel("cancelled").await.unwrap());
    let again = backend
        .schedule(&[replacing("replaced", When::After(Duration::from_mins(1)))])
        .await
        .unwrap();
    assert_eq!(again[0].disposition, Disposition::Superseded);

    let waiting = backend.unserved().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(
        waiting[0].waiting, 1,
        "only `kept` still waits: {waiting:?}"
    );
    backend
        .heartbeat("new", &["send_email"], TTL, Activity::default())
        .await
        .unwrap();
    let mut new = backend.consumer("new").await.unwrap();
    let claimed = new.claim(10, Duration::from_secs(2)).await.unwrap();
    let keys: Vec<&str> = claimed
        .deliveries
        .iter()
        .map(|d| d.message.key.as_str())
        .collect();
    assert_eq!(keys, ["kept"]);
    assert_eq!(
        backend.record("cancelled").await.unwrap().unwrap().state,
        ExecutionState::Cancelled
    );
    assert_eq!(
        backend.record("replaced").await.unwrap().unwrap().state,
        ExecutionState::Scheduled,
        "the replacement waits for its time, not for a worker"
    );
}
