//! Scheduling, promotion, cancellation, snapshots.

use super::*;

#[tokio::test]
async fn schedule_queues_due_calls_and_parks_later_ones() {
    let server = TestServer::start();
    let backend = open(&server, "sched", TTL).await;
    let mut connection = raw(&server).await;
    let now = backend.now().await.unwrap();

    let outcomes = backend
        .schedule(&[
            call("now", Due::Now),
            call("later", Due::After(Duration::from_mins(1))),
            call("past", Due::At(now - Duration::from_secs(5))),
        ])
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| o.disposition == Disposition::Scheduled)
    );
    assert!(outcomes.iter().all(|o| o.generation == 1));
    let later_in = outcomes[1].when.duration_since(now).unwrap();
    assert!(
        within(later_in, Duration::from_mins(1), Duration::from_secs(2)),
        "{later_in:?}"
    );
    assert_eq!(
        outcomes[2].when,
        from_epoch_millis(epoch_millis(now - Duration::from_secs(5)))
    );

    assert_eq!(
        state_of(&backend, "now").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&backend, "past").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&backend, "later").await,
        Some(ExecutionState::Scheduled)
    );
    let queued: usize = connection.xlen("sched:stream").await.unwrap();
    assert_eq!(queued, 2);
    let parked: Vec<String> = connection.zrange("sched:queue", 0, -1).await.unwrap();
    assert_eq!(parked, ["later"]);
    let message: std::collections::HashMap<String, String> =
        connection.hgetall("sched:later").await.unwrap();
    assert_eq!(message["function"], "send_email");
    assert_eq!(message["generation"], "1");
    assert_eq!(message["attempt"], "1");
    assert!(!message.contains_key("traceparent"));

    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (2, 1, 0));
}

#[tokio::test]
async fn add_leaves_a_live_key_alone() {
    let server = TestServer::start();
    let backend = open(&server, "dedupe", TTL).await;
    let mut connection = raw(&server).await;
    let first = backend.schedule(&[call("k", Due::Now)]).await.unwrap();
    let again = backend
        .schedule(&[
            call("k", Due::After(Duration::from_secs(30))),
            call("k", Due::Now),
        ])
        .await
        .unwrap();
    for outcome in &again {
        assert_eq!(outcome.disposition, Disposition::AlreadyScheduled);
        assert_eq!(outcome.generation, first[0].generation);
        assert_eq!(outcome.when, first[0].when);
    }
    let queued: usize = connection.xlen("dedupe:stream").await.unwrap();
    assert_eq!(queued, 1);
    let parked: usize = connection.zcard("dedupe:queue").await.unwrap();
    assert_eq!(parked, 0);
}

#[tokio::test]
async fn replace_supersedes_parked_and_queued_copies() {
    let server = TestServer::start();
    let backend = open(&server, "replace", TTL).await;
    let mut connection = raw(&server).await;
    backend
        .schedule(&[call("k", Due::After(Duration::from_mins(1)))])
        .await
        .unwrap();

    let replaced = backend.schedule(&[replacing("k", Due::Now)]).await.unwrap();
    assert_eq!(replaced[0].disposition, Disposition::Superseded);
    assert_eq!(replaced[0].generation, 2);
    assert_eq!(
        keys_of(&mut connection, "replace").await,
        BTreeSet::from(["replace:runs:k".to_owned(), "replace:stream".to_owned(),])
    );

    let again = backend.schedule(&[replacing("k", Due::Now)]).await.unwrap();
    assert_eq!(again[0].disposition, Disposition::Superseded);
    assert_eq!(again[0].generation, 3);
    let queued: usize = connection.xlen("replace:stream").await.unwrap();
    assert_eq!(queued, 1, "the queued copy of generation 2 is gone");

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert_eq!(delivery.message.generation, 3);
    assert!(!delivery.redelivered);
}

#[tokio::test]
async fn promotion_moves_only_due_tasks() {
    let server = TestServer::start();
    let backend = open(&server, "promote", TTL).await;
    let now = backend.now().await.unwrap();
    backend
        .schedule(&[
            call("soon", Due::At(now + Duration::from_millis(300))),
            call("later", Due::At(now + Duration::from_hours(1))),
        ])
        .await
        .unwrap();

    let early = backend.promote_due(100).await.unwrap();
    assert_eq!(early.moved, 0);
    let next = early.next_due_in.unwrap();
    assert!(next <= Duration::from_millis(300), "{next:?}");

    tokio::time::sleep(next + Duration::from_millis(50)).await;
    let promoted = backend.promote_due(100).await.unwrap();
    assert_eq!(promoted.moved, 1);
    let next = promoted.next_due_in.unwrap();
    assert!(
        within(next, Duration::from_hours(1), Duration::from_secs(5)),
        "{next:?}"
    );
    assert_eq!(
        state_of(&backend, "soon").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&backend, "later").await,
        Some(ExecutionState::Scheduled)
    );

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert_eq!(delivery.message.key, "soon");
    assert_eq!(
        delivery.message.when,
        from_epoch_millis(epoch_millis(now + Duration::from_millis(300)))
    );

    backend.cancel("later").await.unwrap();
    let empty = backend.promote_due(100).await.unwrap();
    assert_eq!((empty.moved, empty.next_due_in), (0, None));
}

#[tokio::test]
async fn cancel_removes_waiting_tasks_and_signals_running_ones() {
    let server = TestServer::start();
    let backend = open(&server, "cancel", TTL).await;
    let mut connection = raw(&server).await;
    backend
        .schedule(&[
            call("parked", Due::After(Duration::from_mins(1))),
            call("queued", Due::Now),
        ])
        .await
        .unwrap();
    assert!(backend.cancel("parked").await.unwrap());
    assert!(backend.cancel("queued").await.unwrap());
    assert!(
        !backend.cancel("parked").await.unwrap(),
        "already cancelled"
    );
    assert!(!backend.cancel("never").await.unwrap());
    assert_eq!(
        keys_of(&mut connection, "cancel").await,
        BTreeSet::from([
            "cancel:runs:parked".to_owned(),
            "cancel:runs:queued".to_owned(),
            "cancel:stream".to_owned(),
        ])
    );
    for key in ["parked", "queued"] {
        let record = backend.record(key).await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Cancelled);
        assert!(record.completed_at.is_some());
        let ttl: i64 = connection.pttl(format!("cancel:runs:{key}")).await.unwrap();
        assert!(ttl > 50_000, "{key}: {ttl}");
    }
    assert!(backend.live_counts().await.unwrap().is_empty());

    let mut cancellations = backend.cancellations().await.unwrap();
    backend
        .schedule(&[call("running", Due::Now)])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert!(backend.cancel("running").await.unwrap());
    let signalled = tokio::time::timeout(Duration::from_secs(5), cancellations.next())
        .await
        .unwrap();
    let signalled = signalled.expect("a cancellation");
    assert!(signalled.targets("running", delivery.message.generation));
    assert!(!signalled.targets("running", delivery.message.generation + 1));
    assert_eq!(
        state_of(&backend, "running").await,
        Some(ExecutionState::Cancelled)
    );
    let outcomes = backend
        .finish(
            "w1",
            vec![Finish {
                outcome: Outcome::Cancelled,
                ..completed(&delivery, None)
            }],
        )
        .await
        .unwrap();
    assert_eq!(outcomes, [FinishOutcome::Recorded]);
    assert_eq!(
        state_of(&backend, "running").await,
        Some(ExecutionState::Cancelled)
    );
    assert!(backend.live_counts().await.unwrap().is_empty());
}

#[tokio::test]
async fn live_lists_every_live_task_with_its_record() {
    let server = TestServer::start();
    let backend = open(&server, "live", TTL).await;
    backend
        .schedule(&[
            call("running", Due::Now),
            call("queued", Due::Now),
            call("scheduled", Due::After(Duration::from_mins(1))),
        ])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries[0].message.key, "running");

    let live = backend.live().await.unwrap();
    let keys = |records: &[crate::execution::ExecutionRecord]| -> Vec<String> {
        records.iter().map(|record| record.key.clone()).collect()
    };
    assert_eq!(keys(&live.running), ["running"]);
    assert_eq!(keys(&live.queued), ["queued"]);
    assert_eq!(keys(&live.scheduled), ["scheduled"]);
    assert_eq!(live.running[0].state, ExecutionState::Running);
    assert_eq!(live.running[0].worker.as_deref(), Some("w1"));
    assert_eq!(live.scheduled[0].state, ExecutionState::Scheduled);
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (1, 1, 1));

    assert_eq!(backend.clear().await.unwrap(), 2);
    let live = backend.live().await.unwrap();
    assert!(live.queued.is_empty() && live.scheduled.is_empty());
    assert_eq!(keys(&live.running), ["running"]);
    assert_eq!(
        state_of(&backend, "queued").await,
        Some(ExecutionState::Cancelled)
    );
    assert_eq!(
        state_of(&backend, "scheduled").await,
        Some(ExecutionState::Cancelled)
    );
}

/// A generated key (`fresh`) is queued without looking for a record, and ends up
/// written exactly as the full path writes a new key: the same record fields and the
/// same message fields. So are the keys of a batch of generated keys alone (add.lua).
#[tokio::test]
async fn a_fresh_key_is_written_as_any_new_key() {
    let server = TestServer::start();
    let backend = open(&server, "fresh", TTL).await;
    let mut connection = raw(&server).await;
    let generated = |key| NewTask {
        fresh: true,
        ..call(key, Due::Now)
    };
    let outcomes = backend
        .schedule(&[generated("generated"), call("named", Due::Now)])
        .await
        .unwrap();
    assert_eq!(outcomes[0].disposition, Disposition::Scheduled);
    assert_eq!(outcomes[0].generation, 1);
    let alone = backend
        .schedule(&[generated("alone-1"), generated("alone-2")])
        .await
        .unwrap();
    assert_eq!(alone.len(), 2);
    for outcome in &alone {
        assert_eq!(outcome.disposition, Disposition::Scheduled);
        assert_eq!(outcome.generation, 1);
        assert_eq!(outcome.when, alone[0].when);
        let late = outcome.when.elapsed().unwrap_or_default();
        assert!(late < std::time::Duration::from_secs(5), "{late:?}");
    }

    let record = |key: &'static str| {
        let mut connection = connection.clone();
        async move {
            let mut fields: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(format!("fresh:runs:{key}"))
                .query_async::<std::collections::HashMap<String, String>>(&mut connection)
                .await
                .unwrap()
                .into_iter()
                .filter(|(field, _)| !["when", "stream_id", "args"].contains(&field.as_str()))
                .collect();
            fields.sort();
            fields
        }
    };
    assert_eq!(record("generated").await, record("named").await);
    assert_eq!(record("alone-1").await, record("named").await);
    assert_eq!(record("alone-2").await, record("named").await);

    let entries: redis::Value = redis::cmd("XRANGE")
        .arg("fresh:stream")
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    let names = |entry: &redis::Value| -> Vec<String> {
        let redis::Value::Array(parts) = entry else {
            panic!("{entry:?}")
        };
        let redis::Value::Array(fields) = &parts[1] else {
            panic!("{entry:?}")
        };
        fields
            .iter()
            .step_by(2)
            .map(|name| redis::from_redis_value::<String>(name.clone()).unwrap())
            .collect()
    };
    let redis::Value::Array(entries) = entries else {
        panic!("{entries:?}")
    };
    assert_eq!(entries.len(), 4);
    for entry in &entries[1..] {
        assert_eq!(names(&entries[0]), names(entry));
    }

    // A second call of a fresh key is still told apart by the full path.
    for key in ["generated", "alone-2"] {
        let again = backend.schedule(&[call(key, Due::Now)]).await.unwrap();
        assert_eq!(again[0].disposition, Disposition::AlreadyScheduled, "{key}");
    }
}
