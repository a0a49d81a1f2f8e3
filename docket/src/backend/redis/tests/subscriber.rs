//! The handle's one pub/sub connection: shared by every subscription, batched, replaced
//! when it is killed, closed when nothing is followed.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;

use super::*;

/// The server's pub/sub connections, each as its `CLIENT LIST` fields.
async fn pubsub_clients(connection: &mut MultiplexedConnection) -> Vec<HashMap<String, String>> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(connection)
        .await
        .unwrap();
    list.lines()
        .map(|line| {
            line.split_whitespace()
                .filter_map(|field| field.split_once('='))
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect()
        })
        .collect()
}

/// `SUBSCRIBE` commands the server has run so far.
async fn subscribe_commands(connection: &mut MultiplexedConnection) -> u64 {
    command_calls(connection, "subscribe").await
}

/// Subscribers of one channel (`PUBSUB NUMSUB`).
async fn subscribers(connection: &mut MultiplexedConnection, channel: &str) -> u64 {
    let (_, count): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(connection)
        .await
        .unwrap();
    count
}

async fn listeners(connection: &mut MultiplexedConnection, name: &str) -> u64 {
    redis::cmd("ZCARD")
        .arg(format!("{name}:listeners"))
        .query_async(connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_subscription_of_a_backend_shares_one_connection_and_a_few_commands() {
    let store = Store::on_redis();
    let backend = store.open("shared", TTL).await;
    let mut admin = store.redis().await.unwrap();
    let before = subscribe_commands(&mut admin).await;
    let keys: Vec<String> = (0..2000).map(|n| format!("k{n}")).collect();
    let mut streams = futures::future::try_join_all(keys.iter().map(|key| backend.subscribe(key)))
        .await
        .unwrap();
    let _cancellations = backend.cancellations().await.unwrap();

    let clients = pubsub_clients(&mut admin).await;
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(
        clients[0]["sub"], "4000",
        "a state and a progress channel per key"
    );
    assert_eq!(clients[0]["psub"], "1", "cancellations");
    let commands = subscribe_commands(&mut admin).await - before;
    assert!(
        commands <= 20,
        "{commands} SUBSCRIBE commands for 2000 keys"
    );
    assert_eq!(listeners(&mut admin, "shared").await, 1, "registered once");

    backend.schedule(&[call("k7", When::Now)]).await.unwrap();
    assert!(matches!(
        next_event(&mut streams[7]).await,
        Event::State {
            state: ExecutionState::Queued,
            ..
        }
    ));

    drop(streams);
    wait_for(Duration::from_secs(5), "every key unsubscribed", || {
        let mut admin = admin.clone();
        async move {
            let clients = pubsub_clients(&mut admin).await;
            let listening = listeners(&mut admin, "shared").await;
            match clients.first().map(|client| client["sub"].as_str()) {
                Some("0") if listening == 0 => Ok(()),
                _ => Err((clients, listening)),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_killed_subscriber_connection_is_replaced_and_its_followers_told_once_resubscribed() {
    let store = Store::on_redis();
    let backend = store.open("killed", TTL).await;
    let mut admin = store.redis().await.unwrap();
    let mut events = backend.subscribe("k").await.unwrap();
    let mut cancellations = backend.cancellations().await.unwrap();

    let killed: u64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // Cancellations are told at once: until subscribed again, records are the witness.
    let ended = tokio::time::timeout(Duration::from_secs(5), cancellations.next()).await;
    assert_eq!(ended, Ok(None));
    // A key's followers are told once it is subscribed again, so that what they read
    // next is followed by every later event.
    let ended = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    assert_eq!(subscribers(&mut admin, "killed:state:k").await, 1);

    let mut again = backend.subscribe("k").await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    assert!(matches!(
        next_event(&mut again).await,
        Event::State {
            state: ExecutionState::Queued,
            ..
        }
    ));
    assert_eq!(pubsub_clients(&mut admin).await.len(), 1);
}

#[tokio::test]
async fn a_renewal_that_finds_the_registration_gone_tells_the_followers() {
    let store = Store::on_redis();
    let backend = store.open("vanished", TTL).await;
    let mut admin = store.redis().await.unwrap();
    let mut events = backend.subscribe("k").await.unwrap();
    let () = redis::cmd("DEL")
        .arg("vanished:listeners")
        .query_async(&mut admin)
        .await
        .unwrap();
    // Renewed every 5 s.
    let ended = tokio::time::timeout(Duration::from_secs(15), events.next()).await;
    assert!(matches!(ended, Ok(None)), "{ended:?}");
    assert_eq!(
        listeners(&mut admin, "vanished").await,
        1,
        "registered again"
    );
}

#[tokio::test]
async fn the_connection_is_closed_once_nothing_is_followed() {
    let store = Store::on_redis();
    let backend = store.open("closing", TTL).await;
    let mut admin = store.redis().await.unwrap();
    let events = backend.subscribe("k").await.unwrap();
    assert_eq!(pubsub_clients(&mut admin).await.len(), 1);
    drop(events);
    // After a few seconds' wait for another follower.
    wait_for(Duration::from_secs(20), "the connection closed", || {
        let mut admin = admin.clone();
        async move {
            let clients = pubsub_clients(&mut admin).await;
            if clients.is_empty() {
                Ok(())
            } else {
                Err(clients)
            }
        }
    })
    .await;
    let mut events = backend.subscribe("k").await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    assert!(matches!(next_event(&mut events).await, Event::State { .. }));
}
