//! The Redis backend against a real `redis-server` each test starts for itself.

mod leases;
mod observe;
mod runs;
mod scheduling;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::RedisBackend;
use super::keys::Keys;
use super::scripts::probe;
use super::test_server::TestServer;
use super::wire::{epoch_millis, format_time, from_epoch_millis};
use crate::backend::{
    AdmissionCheck, Backend, BackendConfig, Consumer, Delivery, Finish, FinishOutcome, NewTask,
    Outcome, ProgressUpdate, Slot,
};
use crate::error::{TaskError, TaskErrorKind};
use crate::execution::{Disposition, Event, ExecutionState, ProgressState};
use crate::task::Due;

const TTL: Duration = Duration::from_mins(1);

fn config(name: &str, ttl: Duration) -> BackendConfig {
    BackendConfig {
        name: name.to_owned(),
        execution_ttl: ttl,
        max_deliveries: 10,
        connections: crate::client::ConnectionOptions::default(),
        shown_url: "redis://test".to_owned(),
    }
}

fn redis_url(url: &str) -> crate::backend::url::RedisUrl {
    match crate::backend::url::BackendUrl::parse(url).unwrap() {
        crate::backend::url::BackendUrl::Redis(target) => target,
        crate::backend::url::BackendUrl::Memory { .. } => unreachable!("{url} is a Redis URL"),
    }
}

async fn open(server: &TestServer, name: &str, ttl: Duration) -> RedisBackend {
    RedisBackend::connect(&redis_url(&server.url()), config(name, ttl))
        .await
        .expect("connect")
}

async fn raw(server: &TestServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn call(key: &str, due: Due) -> NewTask {
    NewTask {
        key: key.to_owned(),
        function: "send_email".to_owned(),
        args: format!(r#"{{"to":"{key}@example.com"}}"#),
        due,
        attempt: 1,
        replace: false,
        traceparent: None,
        fresh: false,
    }
}

fn replacing(key: &str, due: Due) -> NewTask {
    NewTask {
        replace: true,
        ..call(key, due)
    }
}

fn completed(delivery: &Delivery, result: Option<&str>) -> Finish {
    Finish {
        delivery_id: delivery.id.clone(),
        key: delivery.message.key.clone(),
        generation: delivery.message.generation,
        outcome: Outcome::Completed {
            result: result.map(str::to_owned),
        },
        next: None,
        slot: None,
        release: false,
    }
}

async fn state_of(backend: &RedisBackend, key: &str) -> Option<ExecutionState> {
    backend
        .record(key)
        .await
        .unwrap()
        .map(|record| record.state)
}

/// Every key of the docket `name`.
async fn keys_of(connection: &mut MultiplexedConnection, name: &str) -> BTreeSet<String> {
    let keys: Vec<String> = connection.keys(format!("{name}:*")).await.unwrap();
    keys.into_iter().collect()
}

async fn claim_one(consumer: &mut Box<dyn Consumer>) -> Delivery {
    let mut claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 1, "{claimed:?}");
    claimed.deliveries.remove(0)
}

fn within(actual: Duration, expected: Duration, slack: Duration) -> bool {
    actual + slack >= expected && actual <= expected + slack
}

#[tokio::test]
async fn a_script_unknown_to_the_server_is_loaded_and_run() {
    let server = TestServer::start();
    let mut connection = raw(&server).await;
    let script = probe("return ARGV[1] .. '/' .. KEYS[1]");
    let call = || async {
        let answer: String = script
            .key("k")
            .arg("orders")
            .invoke_async(&mut raw(&server).await)
            .await
            .unwrap();
        answer
    };
    // A fresh server has never seen it: NOSCRIPT, then loaded and run.
    assert_eq!(call().await, "orders/k");
    let loaded: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script.code())
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        loaded,
        script.hash(),
        "the hash EVALSHA uses is the server's"
    );
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(call().await, "orders/k", "run again after SCRIPT FLUSH");
}

#[tokio::test]
async fn lua_and_rust_agree_on_times_and_key_names() {
    let server = TestServer::start();
    let mut connection = raw(&server).await;
    let samples: [u64; 6] = [
        0,
        951_782_400_000,     // 2000-02-29 (leap day)
        1_709_251_199_999,   // 2024-02-29T23:59:59.999
        1_741_064_767_089,   // 2025-03-04T05:06:07.089
        4_102_444_800_000,   // 2100-01-01 (not a leap year)
        253_402_300_799_999, // 9999-12-31T23:59:59.999
    ];
    for ms in samples {
        let lua: String = probe("return rfc3339(tonumber(ARGV[2]))")
            .arg("orders")
            .arg(ms)
            .invoke_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(lua, format_time(from_epoch_millis(ms)), "{ms} ms");
    }
    let lua: Vec<String> = probe(
        "return { record_key('k:1'), progress_key('k:1'), result_key('k:1', 4), \
         task_workers_key('t'), worker_tasks_key('w'), state_channel('k:1'), \
         progress_channel('k:1') }",
    )
    .arg("orders")
    .invoke_async(&mut connection)
    .await
    .unwrap();
    let keys = Keys::new("orders");
    assert_eq!(
        lua,
        [
            keys.record("k:1"),
            keys.progress("k:1"),
            keys.result("k:1", 4),
            keys.task_workers("t"),
            keys.worker_tasks("w"),
            keys.state_channel("k:1"),
            keys.progress_channel("k:1"),
        ]
    );
}

#[tokio::test]
async fn now_is_the_server_clock() {
    let server = TestServer::start();
    let backend = open(&server, "clock", TTL).await;
    let now = backend.now().await.unwrap();
    let local = SystemTime::now();
    let skew = local
        .duration_since(now)
        .unwrap_or_else(|error| error.duration());
    assert!(skew < Duration::from_secs(2), "{skew:?}");
}

/// Runs every operation as a user holding only the guide's ACL rules for the docket
/// `orders`: the `+@all` line, and the restrictive line of command categories (plus
/// `+time`: `TIME`, which every script calls, is in no category but `@fast`).
#[tokio::test]
async fn the_documented_acl_lines_are_enough() {
    let server = TestServer::start();
    let mut admin = raw(&server).await;
    let lines = [
        ("all", "~orders:* &orders:* +@all"),
        (
            "restricted",
            "~orders:* &orders:* +@read +@write +@set +@sortedset +@hash +@stream +@pubsub \
             +@scripting +@connection +time",
        ),
    ];
    for (user, rules) in lines {
        let mut command = redis::cmd("ACL");
        command.arg("SETUSER").arg(user).arg("on").arg(">secret");
        for rule in rules.split_whitespace() {
            command.arg(rule);
        }
        let () = command.query_async(&mut admin).await.unwrap();
        let _: () = redis::cmd("FLUSHALL")
            .query_async(&mut admin)
            .await
            .unwrap();

        let url = server
            .url()
            .replace("redis://", &format!("redis://{user}:secret@"));
        let backend = RedisBackend::connect(&redis_url(&url), config("orders", TTL))
            .await
            .unwrap_or_else(|error| panic!("{user}: {error}"));
        exercise_everything(&backend)
            .await
            .unwrap_or_else(|error| panic!("{user}: {error}"));
    }
}

async fn exercise_everything(backend: &RedisBackend) -> crate::error::Result<()> {
    let mut events = backend.subscribe("k").await?;
    let mut cancellations = backend.cancellations().await?;
    backend
        .schedule(&[
            call("k", Due::Now),
            call("later", Due::After(Duration::from_mins(1))),
            call("gone", Due::Now),
        ])
        .await?;
    backend.heartbeat("w1", &["send_email"], TTL).await?;
    assert_eq!(backend.workers(Some("send_email")).await?.len(), 1);
    let mut consumer = backend.consumer("w1").await?;
    let claimed = consumer.claim(1, Duration::from_secs(2)).await?;
    let delivery = &claimed.deliveries[0];
    backend
        .report_progress("k", ProgressUpdate::Increment(1))
        .await?;
    assert!(backend.progress("k").await?.is_some());
    assert_eq!(
        backend.renew("w1", vec![delivery.id.clone()]).await?,
        Vec::<String>::new()
    );
    assert!(backend.reclaim("w2", TTL, 10).await?.is_empty());
    assert_eq!(backend.live().await?.running.len(), 1);
    assert_eq!(backend.live_counts().await?.queued, 1);
    assert_eq!(backend.promote_due(10).await?.moved, 0);
    assert!(backend.cancel("gone").await?);
    assert!(backend.cancel("k").await?);
    let signalled = tokio::time::timeout(Duration::from_secs(5), cancellations.next()).await;
    let signalled = signalled.ok().flatten().expect("a cancellation");
    assert_eq!(signalled.key, "k");
    assert_eq!(signalled.generation, Some(delivery.message.generation));
    backend
        .finish("w1", vec![completed(delivery, Some("1"))])
        .await?;
    assert_eq!(backend.clear().await?, 1);
    backend.now().await?;
    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(first, Ok(Some(Event::State { .. }))), "{first:?}");
    Ok(())
}
