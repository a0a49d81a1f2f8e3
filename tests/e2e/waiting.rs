//! Waiting at scale: a hundred thousand `result()` waiters on one handle, which holds one
//! subscriber connection for all of them; waiters whose subscriber connection is killed.

use std::time::Duration;

use docket::{ConnectionOptions, Event, ExecutionState};
use futures::StreamExt;

use crate::support::{RedisServer, Target, drain, on_both_backends, test_worker, wait_for};
use crate::tasks::AddNumbers;

/// The server's client connections, each as its `CLIENT LIST` line (`TYPE pubsub`: the
/// subscriber connections only).
fn clients(admin: &mut ::redis::Connection, pubsub: bool) -> Vec<String> {
    let mut command = ::redis::cmd("CLIENT");
    command.arg("LIST");
    if pubsub {
        command.arg("TYPE").arg("pubsub");
    }
    let list: String = command.query(admin).unwrap();
    list.lines().map(str::to_owned).collect()
}

/// The `sub=` count (channels subscribed) of a `CLIENT LIST` line.
fn channels_of(client: &str) -> usize {
    client
        .split_whitespace()
        .find_map(|field| field.strip_prefix("sub="))
        .map_or(0, |count| count.parse().unwrap())
}

async fn a_hundred_thousand_waiters_on_one_handle_all_get_their_results(target: Target) {
    const WAITERS: i64 = 100_000;
    let docket = target.docket().await;
    // One inspecting connection throughout: a fresh one per look would count the last
    // look's, not yet seen closing.
    let mut admin = target.redis.as_ref().map(RedisServer::connection);
    let before = admin.as_mut().map(|admin| clients(admin, false).len());
    let mut executions = Vec::new();
    for first in (0..WAITERS).step_by(10_000) {
        let calls = (first..first + 10_000).map(|n| AddNumbers::new(n, 1));
        executions.extend(docket.add_many(calls).await.unwrap());
    }
    let waiters: Vec<_> = executions
        .into_iter()
        .map(|execution| tokio::spawn(async move { execution.typed::<i64>().result().await }))
        .collect();

    if let (Some(admin), Some(before)) = (admin.as_mut(), before) {
        // A state and a progress channel per key, all on one connection.
        let subscriber = wait_for(Duration::from_mins(1), "every waiter subscribed", || {
            let subscribers = clients(admin, true);
            std::future::ready(match subscribers.as_slice() {
                [one] if channels_of(one) == 2 * 100_000 => Ok(one.clone()),
                _ => Err(subscribers),
            })
        })
        .await;
        // On a loaded machine a command connection may time out and be replaced: the
        // count settles once the server has seen the old one close.
        wait_for(
            Duration::from_secs(10),
            "the handle to hold one connection more than before the waiters",
            || {
                let during = clients(admin, false).len();
                std::future::ready(if during <= before + 1 {
                    Ok(())
                } else {
                    Err(format!(
                        "{before} connections before the waiters, {during} while they wait \
                         (subscriber: {subscriber})"
                    ))
                })
            },
        )
        .await;
    }
    let worker = test_worker(&docket).concurrency(100).build().unwrap();
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    // A liveness bound, not a speed target: a debug build drains the 100,000 calls in
    // about a minute on two cores shared with the rest of the suite.
    let all_answered = tokio::time::Instant::now() + Duration::from_mins(6);
    for (n, waiter) in (0..WAITERS).zip(waiters) {
        let result = tokio::time::timeout_at(all_answered, waiter)
            .await
            .unwrap_or_else(|_| panic!("waiter {n} of {WAITERS} got no result within 6 minutes"))
            .unwrap();
        assert_eq!(result.unwrap(), n + 1);
    }
    if let Some(admin) = admin.as_mut() {
        // The worker's cancellation listener rode the same connection.
        assert_eq!(clients(admin, true).len(), 1);
    }
    stop.shutdown();
    running.await.unwrap().unwrap();
}

on_both_backends!(a_hundred_thousand_waiters_on_one_handle_all_get_their_results);

/// A producer that reconnects its subscriber only after 2 s: a run that ends meanwhile
/// is not heard, and must be read from the record once the handle subscribed again.
async fn slow_to_reconnect(target: &Target) -> docket::Docket {
    target
        .builder()
        .connections(
            ConnectionOptions::default()
                .reconnection_delay(Duration::from_secs(2), Duration::from_secs(2)),
        )
        .connect()
        .await
        .unwrap()
}

/// Kills the subscriber connections once one follows `key`.
async fn kill_the_subscriber_of(target: &Target, key: &str) {
    let server = target.redis.as_ref().unwrap();
    let channel = format!("{}:state:{key}", target.name);
    wait_for(Duration::from_secs(10), "the waiter subscribed", || {
        let (_, subscribers): (String, u64) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut server.connection())
            .unwrap();
        std::future::ready(if subscribers == 1 {
            Ok(())
        } else {
            Err(subscribers)
        })
    })
    .await;
    let killed: u64 = ::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(killed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_whose_subscriber_connection_is_killed_still_gets_its_result() {
    let target = Target::redis();
    let producer = slow_to_reconnect(&target).await;
    let execution = producer.add(AddNumbers::new(2, 3)).await.unwrap();
    let waiting = tokio::spawn({
        let execution = execution.clone();
        async move { execution.result().await }
    });
    kill_the_subscriber_of(&target, execution.key()).await;
    drain(&target.docket().await).await;
    let result = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .expect("the waiter got its result after the reconnection")
        .unwrap();
    assert_eq!(result.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_subscriber_connection_is_killed_sees_the_end() {
    let target = Target::redis();
    let producer = slow_to_reconnect(&target).await;
    let execution = producer.add(AddNumbers::new(2, 3)).await.unwrap();
    let events = execution.subscribe().await.unwrap();
    kill_the_subscriber_of(&target, execution.key()).await;
    drain(&target.docket().await).await;
    let seen: Vec<Event> = tokio::time::timeout(Duration::from_secs(15), events.collect())
        .await
        .expect("the follower saw the end after the reconnection");
    assert!(
        matches!(
            seen.last(),
            Some(Event::State {
                state: ExecutionState::Completed,
                ..
            })
        ),
        "{seen:?}"
    );
}
