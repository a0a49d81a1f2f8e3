//! Scheduling, promotion, cancellation, snapshots.

use std::collections::HashMap;

use super::*;
use crate::backend::{ACTIVITY_INTERVAL, FinishOutcome};
use crate::model::{Disposition, ExecutionRecord};

pub(super) async fn schedule_queues_due_calls_and_parks_later_ones(store: Store) {
    let backend = store.open("sched", TTL).await;
    let now = backend.now().await.unwrap();

    let outcomes = backend
        .schedule(&[
            call("now", When::Now),
            call("later", When::After(Duration::from_mins(1))),
            call("past", When::At(now - Duration::from_secs(5))),
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
        epoch_millis(outcomes[2].when),
        epoch_millis(now - Duration::from_secs(5))
    );

    assert_eq!(
        state_of(&*backend, "now").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&*backend, "past").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&*backend, "later").await,
        Some(ExecutionState::Scheduled)
    );
    if let Some(mut raw) = store.redis().await {
        let queued: usize = raw.xlen("sched:stream").await.unwrap();
        assert_eq!(queued, 2);
        let parked: Vec<String> = raw.zrange("sched:queue", 0, -1).await.unwrap();
        assert_eq!(parked, ["later"]);
        // A parked call has no copy of its message: its record holds it.
        let exists: bool = raw.exists("sched:later").await.unwrap();
        assert!(!exists);
        let record: HashMap<String, String> = raw.hgetall("sched:runs:later").await.unwrap();
        assert_eq!(record["function"], "send_email");
        assert_eq!(record["generation"], "1");
        assert_eq!(record["attempt"], "1");
        assert!(!record.contains_key("traceparent"));
    }

    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled, counts.running), (2, 1, 0));
}

pub(super) async fn add_leaves_a_live_key_alone(store: Store) {
    let backend = store.open("dedupe", TTL).await;
    let first = backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let again = backend
        .schedule(&[
            call("k", When::After(Duration::from_secs(30))),
            call("k", When::Now),
        ])
        .await
        .unwrap();
    for outcome in &again {
        assert_eq!(outcome.disposition, Disposition::AlreadyScheduled);
        assert_eq!(outcome.generation, first[0].generation);
        assert_eq!(outcome.when, first[0].when);
    }
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled), (1, 0));
    if let Some(mut raw) = store.redis().await {
        let queued: usize = raw.xlen("dedupe:stream").await.unwrap();
        assert_eq!(queued, 1);
        let parked: usize = raw.zcard("dedupe:queue").await.unwrap();
        assert_eq!(parked, 0);
    }
}

pub(super) async fn replace_supersedes_parked_and_queued_copies(store: Store) {
    let backend = store.open("replace", TTL).await;
    backend
        .schedule(&[call("k", When::After(Duration::from_mins(1)))])
        .await
        .unwrap();

    let replaced = backend
        .schedule(&[replacing("k", When::Now)])
        .await
        .unwrap();
    assert_eq!(replaced[0].disposition, Disposition::Superseded);
    assert_eq!(replaced[0].generation, 2);
    let counts = backend.live_counts().await.unwrap();
    assert_eq!((counts.queued, counts.scheduled), (1, 0));
    if let Some(mut raw) = store.redis().await {
        assert_eq!(
            keys_of(&mut raw, "replace").await,
            BTreeSet::from(["replace:runs:k".to_owned(), "replace:stream".to_owned()])
        );
    }

    let again = backend
        .schedule(&[replacing("k", When::Now)])
        .await
        .unwrap();
    assert_eq!(again[0].disposition, Disposition::Superseded);
    assert_eq!(again[0].generation, 3);
    assert_eq!(backend.live_counts().await.unwrap().queued, 1);
    if let Some(mut raw) = store.redis().await {
        let queued: usize = raw.xlen("replace:stream").await.unwrap();
        assert_eq!(queued, 1, "the queued copy of generation 2 is gone");
    }

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert_eq!(delivery.message.generation, 3);
    assert!(!delivery.redelivered);
}

pub(super) async fn promotion_moves_only_due_tasks(store: Store) {
    let backend = store.open("promote", TTL).await;
    let now = backend.now().await.unwrap();
    backend
        .schedule(&[
            call("soon", When::At(now + Duration::from_millis(300))),
            call("later", When::At(now + Duration::from_hours(1))),
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
        state_of(&*backend, "soon").await,
        Some(ExecutionState::Queued)
    );
    assert_eq!(
        state_of(&*backend, "later").await,
        Some(ExecutionState::Scheduled)
    );

    let mut consumer = backend.consumer("w1").await.unwrap();
    let delivery = claim_one(&mut consumer).await;
    assert_eq!(delivery.message.key, "soon");
    assert_eq!(
        epoch_millis(delivery.message.when),
        epoch_millis(now + Duration::from_millis(300))
    );

    backend.cancel("later").await.unwrap();
    let empty = backend.promote_due(100).await.unwrap();
    assert_eq!((empty.moved, empty.next_due_in), (0, None));
}

pub(super) async fn cancel_removes_waiting_tasks_and_signals_running_ones(store: Store) {
    let backend = store.open("cancel", TTL).await;
    backend
        .schedule(&[
            call("parked", When::After(Duration::from_mins(1))),
            call("queued", When::Now),
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
    if let Some(mut raw) = store.redis().await {
        assert_eq!(
            keys_of(&mut raw, "cancel").await,
            BTreeSet::from([
                "cancel:runs:parked".to_owned(),
                "cancel:runs:queued".to_owned(),
                "cancel:stream".to_owned(),
            ])
        );
    }
    for key in ["parked", "queued"] {
        let record = backend.record(key).await.unwrap().unwrap();
        assert_eq!(record.state, ExecutionState::Cancelled);
        assert!(record.completed_at.is_some());
        if let Some(mut raw) = store.redis().await {
            let ttl: i64 = raw.pttl(format!("cancel:runs:{key}")).await.unwrap();
            assert!(ttl > 50_000, "{key}: {ttl}");
        }
    }
    assert!(backend.live_counts().await.unwrap().is_empty());

    let mut cancellations = backend.cancellations().await.unwrap();
    backend
        .schedule(&[call("running", When::Now)])
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
        state_of(&*backend, "running").await,
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
        state_of(&*backend, "running").await,
        Some(ExecutionState::Cancelled)
    );
    assert!(backend.live_counts().await.unwrap().is_empty());
}

/// The keys of some records, in order.
fn keys(records: &[ExecutionRecord]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record.message.key.as_str())
        .collect()
}

pub(super) async fn live_lists_every_live_task_with_its_record(store: Store) {
    let backend = store.open("live", TTL).await;
    backend
        .schedule(&[
            call("running", When::Now),
            call("queued", When::Now),
            call("scheduled", When::After(Duration::from_mins(1))),
        ])
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(1, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries[0].message.key, "running");

    let live = backend.live().await.unwrap();
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
        state_of(&*backend, "queued").await,
        Some(ExecutionState::Cancelled)
    );
    assert_eq!(
        state_of(&*backend, "scheduled").await,
        Some(ExecutionState::Cancelled)
    );
}

/// Queued and running tasks are listed in the order they entered the stream, scheduled
/// ones by due time; a run cancelled while running is listed (and counted) as running
/// until its worker finishes it.
pub(super) async fn live_lists_tasks_in_the_order_they_will_run(store: Store) {
    let backend = store.open("order", TTL).await;
    backend
        .schedule(&[
            call("late", When::After(Duration::from_mins(2))),
            call("c", When::Now),
            call("a", When::Now),
            call("soon", When::After(Duration::from_mins(1))),
            call("d", When::Now),
            call("b", When::Now),
        ])
        .await
        .unwrap();
    let live = backend.live().await.unwrap();
    assert_eq!(keys(&live.queued), ["c", "a", "d", "b"]);
    assert_eq!(keys(&live.scheduled), ["soon", "late"]);

    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(3, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 3);
    let live = backend.live().await.unwrap();
    assert_eq!(keys(&live.running), ["c", "a", "d"]);
    assert_eq!(keys(&live.queued), ["b"]);

    assert!(backend.cancel("a").await.unwrap());
    let live = backend.live().await.unwrap();
    assert_eq!(keys(&live.running), ["c", "a", "d"]);
    assert_eq!(live.running[1].state, ExecutionState::Cancelled);
    assert_eq!(backend.live_counts().await.unwrap().running, 3);
    let cancelled = Finish {
        outcome: Outcome::Cancelled,
        ..completed(&claimed.deliveries[1], None)
    };
    backend.finish("w1", vec![cancelled]).await.unwrap();
    let live = backend.live().await.unwrap();
    assert_eq!(keys(&live.running), ["c", "d"]);
    assert_eq!(backend.live_counts().await.unwrap().running, 2);
}

/// A generated key (`fresh`) is queued without looking for a record, and ends up
/// written exactly as the full path writes a new key: the same record fields and the
/// same message fields. So are the keys of a batch of generated keys alone (add.lua).
pub(super) async fn a_fresh_key_is_written_as_any_new_key(store: Store) {
    let backend = store.open("fresh", TTL).await;
    let generated = |key| NewTask {
        fresh: true,
        ..call(key, When::Now)
    };
    let outcomes = backend
        .schedule(&[generated("generated"), call("named", When::Now)])
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
        assert!(late < Duration::from_secs(5), "{late:?}");
    }

    // The records, but for what differs between calls: key, due time and arguments.
    let named = backend.record("named").await.unwrap().unwrap();
    for key in ["generated", "alone-1", "alone-2"] {
        let mut record = backend.record(key).await.unwrap().unwrap();
        record.message.key.clone_from(&named.message.key);
        record.message.when = named.message.when;
        record.message.args.clone_from(&named.message.args);
        assert_eq!(record, named, "{key}");
    }

    if let Some(mut raw) = store.redis().await {
        redis_fields_agree(&mut raw).await;
    }

    // A second call of a fresh key is still told apart by the full path.
    for key in ["generated", "alone-2"] {
        let again = backend.schedule(&[call(key, When::Now)]).await.unwrap();
        assert_eq!(again[0].disposition, Disposition::AlreadyScheduled, "{key}");
    }
}

/// The record hashes and stream entries the fresh-key test wrote name the same fields.
async fn redis_fields_agree(raw: &mut MultiplexedConnection) {
    let record = |key: &'static str| {
        let mut connection = raw.clone();
        async move {
            let mut fields: Vec<(String, String)> = ::redis::cmd("HGETALL")
                .arg(format!("fresh:runs:{key}"))
                .query_async::<HashMap<String, String>>(&mut connection)
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

    let entries: ::redis::Value = ::redis::cmd("XRANGE")
        .arg("fresh:stream")
        .arg("-")
        .arg("+")
        .query_async(raw)
        .await
        .unwrap();
    let names = |entry: &::redis::Value| -> Vec<String> {
        let ::redis::Value::Array(parts) = entry else {
            panic!("{entry:?}")
        };
        let ::redis::Value::Array(fields) = &parts[1] else {
            panic!("{entry:?}")
        };
        fields
            .iter()
            .step_by(2)
            .map(|name| ::redis::from_redis_value::<String>(name.clone()).unwrap())
            .collect()
    };
    let ::redis::Value::Array(entries) = entries else {
        panic!("{entries:?}")
    };
    assert_eq!(entries.len(), 4);
    for entry in &entries[1..] {
        assert_eq!(names(&entries[0]), names(entry));
    }
}

/// Every page of a listing, followed from cursor to cursor.
async fn every_page(backend: &dyn Backend, listing: Listing, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = backend
            .page(listing, after.as_deref(), limit)
            .await
            .unwrap();
        pages.push(keys(&page.records).into_iter().map(str::to_owned).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => return pages,
        }
    }
}

/// Pages follow the listing's order, hold at most the number asked for, and chain by
/// their cursors to the end; a superseded message is left out.
pub(super) async fn pages_list_live_tasks_in_order_cursor_to_cursor(store: Store) {
    let backend = store.open("pages", TTL).await;
    let mut calls = Vec::new();
    for i in 0..5 {
        calls.push(call(&format!("now-{i}"), When::Now));
        calls.push(call(
            &format!("later-{i}"),
            When::After(Duration::from_mins(10 - i)),
        ));
    }
    backend.schedule(&calls).await.unwrap();
    let backend = &*backend;
    assert_eq!(
        every_page(backend, Listing::Scheduled, 2).await,
        [
            vec!["later-4", "later-3"],
            vec!["later-2", "later-1"],
            vec!["later-0"]
        ]
    );
    assert_eq!(
        every_page(backend, Listing::Queued, 3).await,
        [vec!["now-0", "now-1", "now-2"], vec!["now-3", "now-4"]]
    );
    assert_eq!(
        every_page(backend, Listing::Running, 3).await,
        [Vec::<String>::new()]
    );

    let mut consumer = backend.consumer("w1").await.unwrap();
    assert_eq!(
        consumer
            .claim(3, Duration::from_secs(2))
            .await
            .unwrap()
            .deliveries
            .len(),
        3
    );
    assert_eq!(
        every_page(backend, Listing::Running, 2).await,
        [vec!["now-0", "now-1"], vec!["now-2"]]
    );
    assert_eq!(
        every_page(backend, Listing::Queued, 10).await,
        [vec!["now-3", "now-4"]]
    );
    // A replaced call is listed once, where its new message is.
    backend
        .schedule(&[replacing("now-3", When::Now)])
        .await
        .unwrap();
    assert_eq!(
        every_page(backend, Listing::Queued, 10).await,
        [vec!["now-4", "now-3"]]
    );
    let first = backend.page(Listing::Queued, None, 1).await.unwrap();
    assert_eq!(
        first.records[0].message.args,
        r#"{"to":"now-4@example.com"}"#
    );
    assert!(first.next.is_some());
}

/// Heartbeats add up the runs workers report, per interval of the docket's clock.
pub(super) async fn heartbeats_add_their_activity_to_the_history(store: Store) {
    let backend = store.open("activity", TTL).await;
    let start = backend.now().await.unwrap();
    assert!(backend.activity(start).await.unwrap().is_empty());
    backend
        .heartbeat("w1", &["a"], TTL, Activity::new(3, 1, 1))
        .await
        .unwrap();
    backend
        .heartbeat("w2", &["a"], TTL, Activity::new(2, 0, 0))
        .await
        .unwrap();
    backend
        .heartbeat("w2", &["a"], TTL, Activity::default())
        .await
        .unwrap();
    let history = backend.activity(start - ACTIVITY_INTERVAL).await.unwrap();
    let total = history
        .iter()
        .fold(Activity::default(), |mut sum, interval| {
            sum.add(interval.activity);
            sum
        });
    assert_eq!(total, Activity::new(5, 1, 1), "{history:?}");
    assert!(
        history.len() <= 2,
        "the heartbeats fall in one or two intervals"
    );
    for interval in &history {
        assert!(interval.start <= backend.now().await.unwrap());
        assert!(interval.start + ACTIVITY_INTERVAL > start, "{history:?}");
    }
    let later = backend.now().await.unwrap() + ACTIVITY_INTERVAL;
    assert!(backend.activity(later).await.unwrap().is_empty());
    if let Some(mut raw) = store.redis().await {
        let keys: Vec<String> = raw.keys("activity:activity:*").await.unwrap();
        assert!(!keys.is_empty());
        for key in keys {
            let ttl: i64 = raw.pttl(&key).await.unwrap();
            assert!(ttl > 0 && ttl <= 15 * 60 * 1000, "{key}: {ttl}");
        }
    }
}

/// A parked call's message is made from its record when it falls due: the same
/// function, arguments, attempt and generation, and its producer's trace context, which
/// the record keeps only while the call is parked.
pub(super) async fn a_parked_call_is_queued_with_the_message_its_record_holds(store: Store) {
    let backend = store.open("parked", TTL).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut traced = call("traced", When::After(Duration::from_millis(50)));
    traced.message.traceparent = Some(traceparent.to_owned());
    backend
        .schedule(&[
            traced,
            call("plain", When::After(Duration::from_millis(50))),
        ])
        .await
        .unwrap();
    if let Some(mut raw) = store.redis().await {
        let kept: Option<String> = raw.hget("parked:runs:traced", "traceparent").await.unwrap();
        assert_eq!(kept.as_deref(), Some(traceparent));
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(backend.promote_due(10).await.unwrap().moved, 2);
    let mut consumer = backend.consumer("w1").await.unwrap();
    let mut claimed = consumer
        .claim(10, Duration::from_secs(2))
        .await
        .unwrap()
        .deliveries;
    claimed.sort_by(|a, b| a.message.key.cmp(&b.message.key));
    let [plain, traced] = &claimed[..] else {
        panic!("{claimed:?}")
    };
    assert_eq!(traced.message.traceparent.as_deref(), Some(traceparent));
    assert_eq!(plain.message.traceparent, None);
    for delivery in [plain, traced] {
        let message = &delivery.message;
        assert_eq!(
            (
                message.function.as_str(),
                message.attempt,
                message.generation
            ),
            ("send_email", 1, 1)
        );
        assert_eq!(
            message.args,
            format!(r#"{{"to":"{}@example.com"}}"#, message.key)
        );
    }
    if let Some(mut raw) = store.redis().await {
        let kept: Option<String> = raw.hget("parked:runs:traced", "traceparent").await.unwrap();
        assert_eq!(kept, None, "the message carries it now");
    }
}
