//! What the Redis backend is by nature, against a real `redis-server` each test starts
//! for itself: its scripts, its ACL, its raw stream entries, its restarts. Everything
//! both backends do is tested at the trait, by the suite in `backend/tests/`.

mod leases;
mod observe;
mod runs;
mod subscriber;

use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;

use super::keys::Keys;
use super::scripts::probe;
use super::wire::{format_time, from_epoch_millis};
use crate::backend::tests::{
    Store, TTL, call, claim_one, config, connect, exercise_everything, next_event, raw, redis_url,
};
use crate::model::{Event, ExecutionState, When};
use docket_testkit::{RedisServer as TestServer, wait_for};

#[tokio::test]
async fn a_script_unknown_to_the_server_is_loaded_and_run() {
    let server = TestServer::start();
    let mut connection = raw(&server.url()).await;
    let script = probe("return ARGV[1] .. '/' .. KEYS[1]");
    let call = || async {
        let answer: String = script
            .key("k")
            .arg("orders")
            .invoke_async(&mut raw(&server.url()).await)
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
    let mut connection = raw(&server.url()).await;
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

/// Runs every operation as a user holding only the guide's ACL rules for the docket
/// `orders`: the `+@all` line, and the restrictive line of command categories (plus
/// `+time`: `TIME`, which every script calls, is in no category but `@fast`).
#[tokio::test]
async fn the_documented_acl_lines_are_enough() {
    let server = TestServer::start();
    let mut admin = raw(&server.url()).await;
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
        let backend = super::RedisBackend::connect(&redis_url(&url), config("orders", TTL))
            .await
            .unwrap_or_else(|error| panic!("{user}: {error}"));
        exercise_everything(&backend)
            .await
            .unwrap_or_else(|error| panic!("{user}: {error}"));
    }
}

/// Calls of `command` the server has run so far (`INFO commandstats`).
async fn command_calls(connection: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(connection)
        .await
        .unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}
