//! Faults: a worker that dies mid-task, Redis restarting under a worker, unknown tasks,
//! and what a run leaves behind in Redis.

use std::time::Duration;

use docket::{Docket, ExecutionState};

use crate::support::{RedisServer, Target, eventually, on_both_backends, runs, test_worker};
use crate::tasks::{AddNumbers, Measure, Overruns, Probed, WithProgress};

fn fast_worker(docket: &Docket, name: &str) -> docket::WorkerBuilder {
    test_worker(docket)
        .name(name)
        .redelivery_timeout(Duration::from_millis(800))
}

/// A worker whose run is dropped mid-task (its future aborted, its connections closed)
/// leaves the message pending; another worker takes it over after the redelivery
/// timeout, with the same attempt, and it completes once.
async fn a_killed_worker_s_task_is_redelivered(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let execution = docket
        .add(Probed::new(probe.clone(), 300))
        .key("orphan")
        .await
        .unwrap();

    let doomed = fast_worker(&docket, "doomed").build().unwrap();
    let crashed = tokio::spawn(async move { doomed.run_forever().await });
    eventually(
        Duration::from_secs(10),
        "the doomed worker to start the task",
        || runs(&probe).len() == 1,
    )
    .await;
    crashed.abort();
    let _ = crashed.await;

    let rescuer = fast_worker(&docket, "rescuer").build().unwrap();
    tokio::time::timeout(Duration::from_secs(20), rescuer.run_until_finished())
        .await
        .expect("the rescuer finished")
        .unwrap();

    let seen = runs(&probe);
    assert_eq!(seen.len(), 2, "started once by each worker: {seen:?}");
    assert!(seen.iter().all(|run| run.key == "orphan"));
    assert!(seen[0].ended.is_none(), "the first run never finished");
    assert!(!seen[0].redelivered);
    assert!(
        seen[1].redelivered,
        "the second run knows it is a redelivery"
    );
    assert_eq!(seen[1].attempt, 1, "a redelivery is not a retry");
    let gap = seen[1].started - seen[0].started;
    assert!(
        gap >= Duration::from_millis(700),
        "redelivered after {gap:?}"
    );
    let record = execution.record().await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    assert_eq!(record.worker.as_deref(), Some("rescuer"));
    assert_eq!(record.message.attempt, 1);
    assert_eq!(execution.result().await.unwrap(), "orphan");
}

/// A running task is interrupted by `cancel` and ends CANCELLED.
async fn cancel_interrupts_a_running_task(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let execution = docket
        .add(Probed::new(probe.clone(), 30_000))
        .key("long")
        .await
        .unwrap();
    let worker = fast_worker(&docket, "canceller").build().unwrap();
    let running = tokio::spawn(async move { worker.run_until_finished().await });
    eventually(Duration::from_secs(10), "the long task to start", || {
        runs(&probe).len() == 1
    })
    .await;
    assert!(execution.cancel().await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker finished after the cancel")
        .unwrap()
        .unwrap();
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Cancelled);
    assert!(runs(&probe)[0].ended.is_none(), "the task was interrupted");
}

/// A run past its timeout fails with a timeout error and is stopped then, not later.
async fn a_timed_out_task_fails_and_stops(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let execution = docket
        .add(Overruns::new(probe.clone(), 1_500))
        .await
        .unwrap();
    fast_worker(&docket, "timer")
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();
    match execution.result().await {
        Err(docket::Error::TaskFailed { error, .. }) => {
            assert!(error.is_timeout(), "{error:?}");
            assert!(error.message().contains("200ms"), "{error}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Well past the task's own sleep: it was aborted, so it never reached its end.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let seen = runs(&probe);
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].ended.is_none(),
        "the timed-out task kept running: {seen:?}"
    );
}

/// A shutdown asked for before the worker starts is honoured, not forgotten.
async fn shutdown_before_start_is_honoured(target: Target) {
    let docket = target.docket().await;
    let worker = fast_worker(&docket, "early").build().unwrap();
    worker.shutdown_handle().shutdown();
    tokio::time::timeout(Duration::from_secs(5), worker.run_forever())
        .await
        .expect("run_forever returned")
        .unwrap();
    // And the worker can run again afterwards.
    docket.add(AddNumbers::new(1, 1)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker.run_until_finished())
        .await
        .expect("the second run finished")
        .unwrap();
}

/// A worker whose run the caller stopped awaiting (a `select!` that took another branch)
/// is no longer running, and runs again when asked.
async fn a_worker_whose_run_was_dropped_runs_again(target: Target) {
    let docket = target.docket().await;
    let worker = fast_worker(&docket, "dropped").build().unwrap();
    let first = tokio::time::timeout(Duration::from_millis(300), worker.run_forever()).await;
    assert!(first.is_err(), "run_forever ran until dropped: {first:?}");
    assert!(!worker.status().running, "{:?}", worker.status());

    let execution = docket.add(AddNumbers::new(2, 2)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker.run_until_finished())
        .await
        .expect("the second run finished")
        .unwrap();
    assert_eq!(execution.result().await.unwrap(), 4);
}

/// Ten megabytes of arguments run; past a docket's configured limit, `add` refuses the
/// call (naming the sizes) and the whole batch, writing nothing.
async fn huge_payloads_run_and_limits_are_enforced(target: Target) {
    let docket = target.docket().await;
    let big = "x".repeat(10_000_000);
    let execution = docket.add(Measure::new(big.clone())).await.unwrap();
    crate::support::drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 10_000_000);

    let limited = target
        .builder()
        .max_payload_size(1_000_000)
        .connect()
        .await
        .unwrap();
    let error = limited.add(Measure::new(big)).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, docket::Error::PayloadTooLarge { .. }),
        "{error:?}"
    );
    assert!(text.contains("10000011 bytes"), "{text}");
    assert!(text.contains("limit of 1000000 bytes"), "{text}");
    let batch = limited
        .add_many([
            docket::Call::from(Measure::new("small".into())),
            docket::Call::from(Measure::new("y".repeat(2_000_000))),
        ])
        .await;
    assert!(batch.is_err());
    assert_eq!(
        limited.snapshot().await.unwrap().total_tasks(),
        0,
        "nothing was written"
    );
}

/// Keys with quotes, newlines, unicode and braces go through every script and event.
async fn awkward_keys_round_trip(target: Target) {
    let docket = target.docket().await;
    let keys = [
        "with \"quotes\" and 'apostrophes'",
        "new\nline",
        "ünïcødé ✓ 🚀",
        "{braces}:and:colons",
        "tab\tand space",
        "back\\slash",
    ];
    let mut executions = Vec::new();
    for key in keys {
        executions.push(docket.add(AddNumbers::new(1, 2)).key(key).await.unwrap());
    }
    let parked = docket
        .add(AddNumbers::new(0, 0))
        .key("later \"{x}\" ✓")
        .after(Duration::from_mins(1))
        .await
        .unwrap();
    let snapshot = docket.snapshot().await.unwrap();
    for key in keys {
        assert!(
            snapshot.queued.iter().any(|r| r.message.key == key),
            "{key:?} in {snapshot:?}"
        );
    }
    assert!(parked.cancel().await.unwrap());
    let mut events = executions[0].subscribe().await.unwrap();
    crate::support::drain(&docket).await;
    for execution in &executions {
        assert_eq!(
            execution.result().await.unwrap(),
            3,
            "{:?}",
            execution.key()
        );
    }
    let mut seen = Vec::new();
    while let Some(event) = futures::StreamExt::next(&mut events).await {
        if let docket::Event::State { state, .. } = event {
            seen.push(state);
        }
    }
    assert_eq!(seen.last(), Some(&ExecutionState::Completed), "{seen:?}");
    assert_eq!(parked.state().await.unwrap(), ExecutionState::Cancelled);
}

/// A run whose workers keep dying is dead-lettered after the configured number of
/// deliveries: recorded FAILED with the reason, never handed to another worker.
async fn a_poison_pill_is_dead_lettered(target: Target) {
    let docket = target.builder().max_deliveries(2).connect().await.unwrap();
    let probe = target.name.clone();
    let execution = docket
        .add(Probed::new(probe.clone(), 60_000))
        .key("poison")
        .await
        .unwrap();
    for delivery in 1..=2 {
        let doomed = fast_worker(&docket, &format!("victim-{delivery}"))
            .build()
            .unwrap();
        let crashed = tokio::spawn(async move { doomed.run_forever().await });
        eventually(Duration::from_secs(10), "the poison pill to start", || {
            runs(&probe).len() == delivery
        })
        .await;
        // The pill "kills" its worker: the run, renewals and heartbeats stop at once.
        crashed.abort();
        let _ = crashed.await;
    }
    let survivor = fast_worker(&docket, "survivor").build().unwrap();
    let handle = survivor.shutdown_handle();
    let running = tokio::spawn(async move { survivor.run_forever().await });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while execution.state().await.unwrap() != ExecutionState::Failed {
        assert!(std::time::Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(runs(&probe).len(), 2, "not run a third time");
    let error = execution.record().await.unwrap().unwrap().error.unwrap();
    assert!(
        error.message().contains("dead-lettered: delivered 2 times"),
        "{error}"
    );
    // Kept for an operator: listed (and in snapshots), retried as a fresh call, purged.
    let letters = docket.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].key, "poison");
    assert_eq!(letters[0].function, "probed");
    assert!(letters[0].error.contains("dead-lettered"), "{letters:?}");
    assert_eq!(docket.snapshot().await.unwrap().dead_letters, letters);
    let again = docket.retry_dead_letter("poison").await.unwrap().unwrap();
    assert_eq!(again.state().await.unwrap(), ExecutionState::Queued);
    assert!(docket.dead_letters().await.unwrap().is_empty());
    assert!(docket.retry_dead_letter("poison").await.unwrap().is_none());
    assert!(again.cancel().await.unwrap());
    assert_eq!(docket.purge_dead_letters().await.unwrap(), 0);
}

on_both_backends!(
    a_poison_pill_is_dead_lettered,
    huge_payloads_run_and_limits_are_enforced,
    awkward_keys_round_trip,
    a_timed_out_task_fails_and_stops,
    shutdown_before_start_is_honoured,
    a_worker_whose_run_was_dropped_runs_again,
    a_killed_worker_s_task_is_redelivered,
    cancel_interrupts_a_running_task,
);

/// Redis is killed (SIGKILL) and restarted with AOF at `appendfsync always` while a
/// worker drains a queue: what Redis acknowledged survives, and the worker reconnects
/// and finishes every task. (At `everysec` Redis may answer before it writes while an
/// fsync is slow, so a SIGKILL can lose acknowledged writes: not docket's to test.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_a_working_worker() {
    let server = RedisServer::builder().append_only().start();
    let mut target = Target::redis_with(server);
    let docket = target.docket().await;
    let probe = target.name.clone();
    let calls: Vec<docket::Call> = (0..30)
        .map(|_| Probed::new(probe.clone(), 40).into())
        .collect();
    let executions = docket.add_many(calls).await.unwrap();
    let worker = fast_worker(&docket, "survivor")
        .concurrency(2)
        .build()
        .unwrap();
    let running = tokio::spawn(async move {
        let result = worker.run_until_finished().await;
        (result, worker.disruptions())
    });
    eventually(Duration::from_secs(10), "a few tasks to run", || {
        runs(&probe).len() >= 6
    })
    .await;
    target.redis.as_mut().unwrap().restart();
    let (result, disruptions) = tokio::time::timeout(Duration::from_mins(1), running)
        .await
        .expect("the worker finished after the restart")
        .unwrap();
    result.unwrap();
    assert!(disruptions >= 1, "the worker noticed the restart");
    crate::support::assert_all_completed(&executions).await;
}

/// Redis restarts having lost everything (no persistence): the consumer group is gone,
/// the worker's next read meets `NOGROUP`, recreates the group and goes on with new work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_lost_everything_gets_its_consumer_group_back() {
    let mut target = Target::redis();
    let docket = target.docket().await;
    let worker = fast_worker(&docket, "regrouper").build().unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move {
        let result = worker.run_forever().await;
        (result, worker.disruptions())
    });
    let before = docket.add(AddNumbers::new(1, 1)).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), before.result()).await;
    assert_eq!(first.expect("the first task ran").unwrap(), 2);

    target.redis.as_mut().unwrap().restart();
    let mut connection = target.redis.as_ref().unwrap().connection();
    assert_eq!(
        command(
            &mut connection,
            &["EXISTS", &format!("{}:stream", target.name)]
        ),
        ::redis::Value::Int(0),
        "the restarted server has no stream and no group"
    );
    let after = loop {
        match docket.add(AddNumbers::new(2, 2)).await {
            Ok(execution) => break execution,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(20), after.result())
        .await
        .expect("the task added after the restart ran");
    assert_eq!(outcome.unwrap(), 4);
    handle.shutdown();
    let (result, disruptions) = running.await.unwrap();
    result.unwrap();
    assert!(disruptions >= 1, "the worker noticed the restart");
}

/// After a run, Redis holds only the documented keys, and every per-task key expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_documented_keys_remain_and_per_task_keys_expire() {
    let target = Target::redis();
    let docket = target.docket().await;
    docket.add(AddNumbers::new(1, 2)).key("sum").await.unwrap();
    docket
        .add(WithProgress::new(2, 5))
        .key("reporting")
        .await
        .unwrap();
    docket
        .add(AddNumbers::new(3, 4))
        .key("soon")
        .after(Duration::from_millis(200))
        .await
        .unwrap();
    docket
        .add(AddNumbers::new(3, 4))
        .key("dropped")
        .after(Duration::from_mins(1))
        .await
        .unwrap();
    docket.cancel("dropped").await.unwrap();
    fast_worker(&docket, "tidy")
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();

    let mut connection = target.redis.as_ref().unwrap().connection();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query(&mut connection)
        .unwrap();
    let p = &target.name;
    for key in &keys {
        let rest = key
            .strip_prefix(&format!("{p}:"))
            .unwrap_or_else(|| panic!("`{key}` is outside the docket's prefix"));
        let per_task = ["runs:", "results:", "progress:"]
            .iter()
            .any(|s| rest.starts_with(s));
        let shared = ["stream", "queue", "workers"].contains(&rest)
            || rest.starts_with("task-workers:")
            || rest.starts_with("worker-tasks:")
            || rest.starts_with("lock:");
        assert!(
            per_task || shared,
            "undocumented key `{key}` (all keys: {keys:?})"
        );
        if per_task || rest.starts_with("worker-tasks:") {
            let ttl: i64 = ::redis::cmd("PTTL")
                .arg(key)
                .query(&mut connection)
                .unwrap();
            assert!(ttl > 0, "`{key}` has no TTL ({ttl})");
        }
        assert!(
            !rest.starts_with("progress:"),
            "progress is deleted at the end: `{key}`"
        );
    }
    for key in ["sum", "reporting", "soon", "dropped"] {
        assert!(
            keys.contains(&format!("{p}:runs:{key}")),
            "record of `{key}` kept: {keys:?}"
        );
        assert!(
            !keys.contains(&format!("{p}:{key}")),
            "parked copy of `{key}` removed"
        );
    }
    assert!(keys.contains(&format!("{p}:results:sum:1")), "{keys:?}");
    let length: usize = ::redis::cmd("XLEN")
        .arg(format!("{p}:stream"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(
        length, 0,
        "acknowledged messages are deleted from the stream"
    );
    let queued: usize = ::redis::cmd("ZCARD")
        .arg(format!("{p}:queue"))
        .query(&mut connection)
        .unwrap();
    assert_eq!(queued, 0);
}

/// `CLIENT PAUSE` for 2 s while a worker drains a backlog and a producer keeps adding:
/// both ride it out, and every call completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_redis_is_ridden_out() {
    let target = Target::redis();
    let docket = target.docket().await;
    let probe = target.name.clone();
    let calls: Vec<docket::Call> = (0..20)
        .map(|_| Probed::new(probe.clone(), 30).into())
        .collect();
    let mut executions = docket.add_many(calls).await.unwrap();
    // Leases outlast the pause, so nothing is redelivered and every call runs once.
    let worker = test_worker(&docket)
        .name("patient")
        .redelivery_timeout(Duration::from_secs(10))
        .concurrency(2)
        .build()
        .unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    eventually(Duration::from_secs(10), "a few tasks to run", || {
        runs(&probe).len() >= 3
    })
    .await;
    let mut admin = target.redis.as_ref().unwrap().connection();
    let paused = std::time::Instant::now();
    let _: () = ::redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2000)
        .arg("ALL")
        .query(&mut admin)
        .unwrap();
    // A producer adding during the pause waits, then succeeds.
    executions.push(
        docket
            .add(Probed::new(probe.clone(), 1))
            .await
            .unwrap()
            .untyped(),
    );
    assert!(
        paused.elapsed() >= Duration::from_millis(1500),
        "the add waited out the pause"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for execution in &executions {
        while execution.state().await.unwrap() != ExecutionState::Completed {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never completed",
                execution.key()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    handle.shutdown();
    running.await.unwrap().unwrap();
    assert_eq!(runs(&probe).len(), 21);
}

/// Corruptions made to parked copies, which the scheduler then queues as they are: the
/// key, the field, its new value (`None`: removed) and the error expected.
const CORRUPTIONS: [(&str, &str, Option<&str>, &str); 5] = [
    (
        "no-function",
        "function",
        None,
        "field `function` is missing",
    ),
    (
        "bad-when",
        "when",
        Some("yesterday"),
        "field `when` has the unreadable value `yesterday`",
    ),
    (
        "bad-attempt",
        "attempt",
        Some("one"),
        "field `attempt` has the unreadable value `one`",
    ),
    (
        "bad-json",
        "args",
        Some("{\"a\": 1,"),
        "(field `args`) are not valid JSON",
    ),
    (
        "wrong-args",
        "args",
        Some("{\"a\": 1}"),
        "do not fit its parameters: missing field `b`",
    ),
];

/// Runs one Redis command given as words.
fn command(connection: &mut ::redis::Connection, words: &[&str]) -> ::redis::Value {
    let mut command = ::redis::cmd(words[0]);
    for word in &words[1..] {
        command.arg(*word);
    }
    command.query(connection).unwrap()
}

/// Replaces the queued message of `key` with a copy whose `field` is `value` (or
/// missing), as a message damaged in the stream would be: the record names the copy.
fn corrupt_queued_message(
    connection: &mut ::redis::Connection,
    name: &str,
    key: &str,
    field: &str,
    value: Option<&str>,
) {
    let (stream, record) = (format!("{name}:stream"), format!("{name}:runs:{key}"));
    let id: String = ::redis::cmd("HGET")
        .arg(&record)
        .arg("stream_id")
        .query(connection)
        .unwrap();
    let entries: Vec<(String, Vec<(String, String)>)> = ::redis::cmd("XRANGE")
        .arg(&stream)
        .arg(&id)
        .arg(&id)
        .query(connection)
        .unwrap();
    let mut fields = entries.into_iter().next().expect("the queued message").1;
    fields.retain(|(name, _)| name != field);
    if let Some(value) = value {
        fields.push((field.to_owned(), value.to_owned()));
    }
    let _: i64 = ::redis::cmd("XDEL")
        .arg(&stream)
        .arg(&id)
        .query(connection)
        .unwrap();
    let copy: String = ::redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg(&fields)
        .query(connection)
        .unwrap();
    let _: i64 = ::redis::cmd("HSET")
        .arg(&record)
        .arg("stream_id")
        .arg(copy)
        .query(connection)
        .unwrap();
}

/// Messages a worker cannot run — a field missing or unreadable, arguments that are not
/// JSON or do not fit the task, entries no docket call wrote — are acknowledged and
/// recorded FAILED naming what is wrong, and the worker goes on. (A call of a task the
/// worker does not serve is not malformed: it waits for a worker that does; see
/// `fleets`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_fail_clearly_and_never_block_the_worker() {
    let target = Target::redis();
    let docket = target.docket().await;
    let mut connection = target.redis.as_ref().unwrap().connection();
    let name = &target.name;
    let mut executions = Vec::new();
    for (key, field, value, _) in CORRUPTIONS {
        executions.push(docket.add(AddNumbers::new(1, 2)).key(key).await.unwrap());
        corrupt_queued_message(&mut connection, name, key, field, value);
    }
    // Entries written by something other than docket: one with no key at all, one
    // whose key has no record.
    let stream = format!("{name}:stream");
    command(&mut connection, &["XADD", &stream, "*", "garbage", "yes"]);
    command(
        &mut connection,
        &[
            "XADD",
            &stream,
            "*",
            "key",
            "orphan",
            "function",
            "add_numbers",
        ],
    );
    let healthy = docket.add(AddNumbers::new(20, 22)).await.unwrap();

    crate::support::drain(&docket).await;

    assert_eq!(healthy.result().await.unwrap(), 42, "the worker went on");
    for ((key, _, _, expected), execution) in CORRUPTIONS.iter().zip(&executions) {
        assert_eq!(
            execution.state().await.unwrap(),
            ExecutionState::Failed,
            "{key}"
        );
        let record = crate::support::record_of(&docket, key).await;
        let error = record
            .error
            .expect("a failed record has its error")
            .to_string();
        assert!(error.contains(expected), "{key}: {error}");
    }
    let orphan = crate::support::record_of(&docket, "orphan").await;
    assert_eq!(orphan.state, ExecutionState::Failed);
    assert_eq!(orphan.message.function, "add_numbers");
    let error = orphan.error.unwrap().to_string();
    assert!(error.contains("field `when` is missing"), "{error}");

    assert_all_acknowledged(&mut connection, &stream);
}

/// Asserts the stream is empty and nothing is pending in its consumer group.
fn assert_all_acknowledged(connection: &mut ::redis::Connection, stream: &str) {
    let length = command(connection, &["XLEN", stream]);
    assert_eq!(
        length,
        ::redis::Value::Int(0),
        "every message was acknowledged and deleted"
    );
    let pending = command(connection, &["XPENDING", stream, "docket-workers"]);
    let ::redis::Value::Array(summary) = pending else {
        panic!("XPENDING answered {pending:?}")
    };
    assert_eq!(
        summary.first(),
        Some(&::redis::Value::Int(0)),
        "none pending"
    );
}

/// Redis out of memory under `noeviction`: producers get a clear error and write
/// nothing, workers keep draining, and once they have freed memory adds work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_refuses_producers_while_workers_drain() {
    out_of_memory_on(
        RedisServer::builder()
            .args(["--maxmemory-policy", "noeviction"])
            .start(),
    )
    .await;
}

/// The out-of-memory scenario on `server` (whose `maxmemory-policy` is `noeviction`).
pub(crate) async fn out_of_memory_on(server: RedisServer) {
    let target = Target::redis_with(server);
    let docket = target.docket().await;
    let server = target.redis.as_ref().unwrap();
    let mut connection = server.connection();
    let used: u64 = server
        .info("memory")
        .get("used_memory")
        .and_then(|value| value.parse().ok())
        .expect("INFO memory has used_memory");
    let limit = (used + 4_000_000).to_string();
    command(&mut connection, &["CONFIG", "SET", "maxmemory", &limit]);

    let payload = "m".repeat(20_000);
    let mut executions = Vec::new();
    let refusal = loop {
        assert!(executions.len() < 2_000, "Redis never ran out of memory");
        let key = format!("fill-{}", executions.len());
        match docket.add(Measure::new(payload.clone())).key(&key).await {
            Ok(execution) => executions.push(execution),
            Err(error) => break (key, error),
        }
    };
    let (refused_key, error) = refusal;
    println!("refused after {} adds: {error}", executions.len());
    assert!(
        matches!(
            error,
            docket::Error::WriteRefused {
                refusal: docket::WriteRefusal::OutOfMemory,
                ..
            }
        ),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("OOM"), "{text}");
    assert!(text.contains("out of memory"), "{text}");
    assert!(text.contains("noeviction"), "{text}");
    assert!(
        docket.get_execution(&refused_key).await.unwrap().is_none(),
        "the refused call wrote nothing"
    );
    // A call without a key (docket generates one, and the script queues it on a shorter
    // path) is refused the same way, before it writes.
    let stream = format!("{}:stream", target.name);
    let queued = || {
        ::redis::cmd("XLEN")
            .arg(&stream)
            .query::<usize>(&mut target.redis.as_ref().unwrap().connection())
            .unwrap()
    };
    let before = queued();
    let unkeyed = docket.add(Measure::new(payload.clone())).await;
    assert!(
        matches!(
            unkeyed,
            Err(docket::Error::WriteRefused {
                refusal: docket::WriteRefusal::OutOfMemory,
                ..
            })
        ),
        "{unkeyed:?}"
    );
    assert_eq!(queued(), before, "the refused unkeyed call queued nothing");

    tokio::time::timeout(Duration::from_secs(30), crate::support::drain(&docket))
        .await
        .expect("the worker drained the queue while Redis was out of memory");
    crate::support::assert_all_completed(&executions).await;
    let after = docket.add(Measure::new(payload)).await.unwrap();
    crate::support::drain(&docket).await;
    assert_eq!(after.result().await.unwrap(), 20_000);
}

/// State events are published only while a subscription is registered in
/// `{docket}:listeners`; a follower whose registration vanished (the key flushed, a lapsed
/// lease) still sees the end, from the record it reads again every second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_registration_vanished_still_sees_the_end() {
    let target = Target::redis();
    let docket = target.docket().await;
    let execution = docket.add(AddNumbers::new(2, 3)).await.unwrap();
    let events = execution.subscribe().await.unwrap();
    let mut connection = target.redis.as_ref().unwrap().connection();
    command(
        &mut connection,
        &["DEL", &format!("{}:listeners", target.name)],
    );
    fast_worker(&docket, "unheard")
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();
    let seen: Vec<docket::Event> =
        tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::collect(events))
            .await
            .expect("the follower saw the end");
    assert!(
        matches!(
            seen.last(),
            Some(docket::Event::State {
                state: ExecutionState::Completed,
                ..
            })
        ),
        "{seen:?}"
    );
}
