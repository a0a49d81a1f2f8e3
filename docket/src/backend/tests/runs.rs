//! Claims and finishes: results, failures, fencing, fire-and-forget, what follows a run.

use super::*;
use crate::backend::{FinishOutcome, Reschedule};
use crate::model::{Disposition, TaskError, TaskErrorKind};

pub(super) async fn every_operation_answers(store: Store) {
    let backend = store.open("orders", TTL).await;
    exercise_everything(&*backend).await.unwrap();
}

pub(super) async fn a_run_ends_completed_with_its_result_and_everything_expiring(store: Store) {
    let backend = store.open("run", TTL).await;
    let mut task = call("k", When::Now);
    task.message.traceparent =
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
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

    if let Some(mut raw) = store.redis().await {
        assert_eq!(
            keys_of(&mut raw, "run").await,
            BTreeSet::from([
                "run:runs:k".to_owned(),
                "run:results:k:1".to_owned(),
                "run:stream".to_owned(),
            ])
        );
        for key in ["run:runs:k", "run:results:k:1"] {
            let ttl: i64 = raw.pttl(key).await.unwrap();
            assert!((50_000..=60_000).contains(&ttl), "{key}: {ttl} ms");
        }
        let stream_length: usize = raw.xlen("run:stream").await.unwrap();
        assert_eq!(stream_length, 0, "the message was acknowledged and deleted");
    }

    let again = backend
        .finish("w1", vec![completed(&delivery, None)])
        .await
        .unwrap();
    assert_eq!(
        again,
        [FinishOutcome::Fenced],
        "a second finish writes nothing"
    );

    let reused = backend.schedule(&[call("k", When::Now)]).await.unwrap();
    assert_eq!(reused[0].disposition, Disposition::Scheduled);
    assert_eq!(reused[0].generation, 2);
    let record = backend.record("k").await.unwrap().unwrap();
    assert!(record.worker.is_none() && record.completed_at.is_none() && !record.has_result);
    if let Some(mut raw) = store.redis().await {
        let ttl: i64 = raw.pttl("run:runs:k").await.unwrap();
        assert_eq!(ttl, -1, "a live record does not expire");
    }
}

pub(super) async fn a_result_in_a_result_store_is_only_noted_in_the_record(store: Store) {
    let backend = store.open("elsewhere", TTL).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    let in_store = Finish {
        outcome: Outcome::Completed {
            result: Some(Output::InStore("elsewhere:results:k:1".into())),
        },
        ..completed(&delivery, None)
    };
    let outcomes = backend.finish("w1", vec![in_store]).await.unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded]);

    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    assert!(record.has_result, "the record says a result exists");
    assert_eq!(record.ttl, Some(TTL), "the record carries the call's TTL");
    assert_eq!(
        backend.result("k", 1).await.unwrap(),
        None,
        "the backend stores nothing of it"
    );
    if let Some(mut raw) = store.redis().await {
        let noted: String = raw.hget("elsewhere:runs:k", "result_key").await.unwrap();
        assert_eq!(noted, "elsewhere:results:k:1");
        let stored: bool = raw.exists("elsewhere:results:k:1").await.unwrap();
        assert!(!stored, "no result key was written");
    }
}

pub(super) async fn a_failed_run_keeps_its_error(store: Store) {
    let backend = store.open("fail", TTL).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
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

pub(super) async fn replacing_a_running_task_fences_its_finish(store: Store) {
    let backend = store.open("fence", TTL).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let first = claim_one(&mut consumer).await;

    let replaced = backend
        .schedule(&[replacing("k", When::Now)])
        .await
        .unwrap();
    assert_eq!(replaced[0].disposition, Disposition::Superseded);
    let outcomes = backend
        .finish("w1", vec![completed(&first, Some("1"))])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Superseded]);
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.message.generation),
        (ExecutionState::Queued, 2)
    );
    assert_eq!(backend.result("k", 1).await.unwrap(), None);

    let second = claim_one(&mut consumer).await;
    assert_eq!(second.message.generation, 2);
}

/// Fire-and-forget deletes records, so generations restart at 1: a run cancelled
/// while running must not end (or steal) the key's next run of the same generation.
pub(super) async fn a_stale_run_cannot_end_a_newer_run_of_the_same_generation(store: Store) {
    let backend = store.open("reborn", Duration::ZERO).await;
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let old = claim_one(&mut consumer).await;
    assert!(backend.cancel("k").await.unwrap());
    assert!(
        backend.record("k").await.unwrap().is_none(),
        "fire-and-forget"
    );

    let again = backend.schedule(&[call("k", When::Now)]).await.unwrap();
    assert_eq!(again[0].generation, old.message.generation);
    let new = claim_one(&mut consumer).await;
    assert_ne!(new.id, old.id);

    let outcomes = backend
        .finish("w1", vec![completed(&old, None)])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Superseded]);
    assert_eq!(
        state_of(&*backend, "k").await,
        Some(ExecutionState::Running)
    );
    let outcomes = backend
        .finish("w1", vec![completed(&new, None)])
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded]);
}

pub(super) async fn fire_and_forget_keeps_nothing_after_a_run(store: Store) {
    let backend = store.open("fnf", Duration::ZERO).await;
    backend
        .schedule(&[
            call("a", When::Now),
            call("b", When::Now),
            call("c", When::Now),
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
    assert_eq!(
        backend.progress("a").await.unwrap(),
        None,
        "no progress is kept either"
    );
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
    if let Some(mut raw) = store.redis().await {
        assert_eq!(
            keys_of(&mut raw, "fnf").await,
            BTreeSet::from(["fnf:stream".to_owned()])
        );
    }
}

/// A retry is the key's next generation, waiting with the error of the attempt before
/// it; events tell a failure only in a FAILED state, and a run that then succeeds ends
/// without the error.
pub(super) async fn a_retry_waits_with_its_last_error_and_ends_without_it(store: Store) {
    let backend = store.open("retry", TTL).await;
    let mut events = backend.subscribe("k").await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let first = claim_one(&mut consumer).await;
    let error = TaskError::new(TaskErrorKind::Failed, "the mail server said no");
    let retry = Finish {
        outcome: Outcome::Failed {
            error: error.clone(),
        },
        next: Some(Reschedule {
            due: When::Now,
            attempt: 2,
            args: None,
            traceparent: None,
            wait: None,
        }),
        ..completed(&first, None)
    };
    assert_eq!(
        backend.finish("w1", vec![retry]).await.unwrap(),
        [FinishOutcome::Recorded]
    );
    let waiting = backend.record("k").await.unwrap().unwrap();
    assert_eq!(waiting.state, ExecutionState::Queued);
    assert_eq!(
        (waiting.message.generation, waiting.message.attempt),
        (2, 2)
    );
    assert_eq!(waiting.error, Some(error.clone()));
    assert!(waiting.worker.is_none() && waiting.started_at.is_none());

    let second = claim_one(&mut consumer).await;
    assert_eq!((second.message.generation, second.message.attempt), (2, 2));
    assert_eq!(second.message.args, first.message.args);
    backend
        .finish("w1", vec![completed(&second, Some("sent"))])
        .await
        .unwrap();
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    assert_eq!(record.error, None, "the run that ended succeeded");
    assert_eq!(
        backend.result("k", 2).await.unwrap().as_deref(),
        Some("sent")
    );

    let state = |state, generation, worker: Option<&str>| Event::State {
        state,
        generation,
        worker: worker.map(str::to_owned),
        error: None,
    };
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(next_event(&mut events).await);
    }
    assert_eq!(
        seen,
        [
            state(ExecutionState::Queued, 1, None),
            state(ExecutionState::Running, 1, Some("w1")),
            state(ExecutionState::Queued, 2, None),
            state(ExecutionState::Running, 2, Some("w1")),
            state(ExecutionState::Completed, 2, None),
        ]
    );
}

/// A perpetual task's next run is due its interval after this run started, with the
/// arguments it is given; one whose interval has passed is queued at once.
pub(super) async fn a_next_run_counts_its_interval_from_this_run_s_start(store: Store) {
    let backend = store.open("perpetual", TTL).await;
    backend
        .schedule(&[call("k", When::Now), call("late", When::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    let [run, late] = <[Delivery; 2]>::try_from(claimed.deliveries).unwrap();
    let started = backend
        .record("k")
        .await
        .unwrap()
        .unwrap()
        .started_at
        .unwrap();
    let next = |every, args: Option<&str>| Reschedule {
        due: When::AfterStart(every),
        attempt: 1,
        args: args.map(str::to_owned),
        traceparent: None,
        wait: None,
    };
    let outcomes = backend
        .finish(
            "w1",
            vec![
                Finish {
                    next: Some(next(Duration::from_mins(1), Some(r#"{"to":"next"}"#))),
                    ..completed(&run, None)
                },
                Finish {
                    next: Some(next(Duration::ZERO, None)),
                    ..completed(&late, None)
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded, FinishOutcome::Recorded]);

    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Scheduled);
    assert_eq!(record.message.generation, 2);
    assert_eq!(record.message.args, r#"{"to":"next"}"#);
    assert_eq!(
        record.message.when.duration_since(started).unwrap(),
        Duration::from_mins(1)
    );
    let record = backend.record("late").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Queued);
    assert_eq!(record.message.args, late.message.args);
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (1, 1, 0));
}
