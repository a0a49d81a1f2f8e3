//! Publishing only to listeners.

use redis::aio::MultiplexedConnection;

use super::*;
use crate::backend::NewTask;

/// `PUBLISH` calls the server has run so far.
async fn publishes(connection: &mut MultiplexedConnection) -> u64 {
    command_calls(connection, "publish").await
}

#[tokio::test]
async fn state_events_are_published_only_while_someone_subscribes() {
    let store = Store::on_redis();
    let backend = store.open("quiet", TTL).await;
    let mut connection = store.redis().await.unwrap();
    let listeners = || redis::cmd("ZCARD").arg("quiet:listeners").clone();

    backend.schedule(&[call("a", When::Now)]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, 0, "nobody listens");

    let mut events = backend.subscribe("b").await.unwrap();
    let registered: u64 = listeners().query_async(&mut connection).await.unwrap();
    assert_eq!(registered, 1);
    backend.schedule(&[call("b", When::Now)]).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on");
    assert!(
        matches!(
            event,
            Event::State {
                state: ExecutionState::Queued,
                ..
            }
        ),
        "{event:?}"
    );
    let after = publishes(&mut connection).await;
    assert_eq!(after, 1);
    // A key generated for its call has no follower yet (events are followed per key):
    // queuing it publishes nothing even while others listen.
    let generated = NewTask {
        fresh: true,
        ..call("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", When::Now)
    };
    backend.schedule(&[generated]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, after);

    // Dropping the stream ends the registration; then nothing is published again.
    drop(events);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let left: u64 = listeners().query_async(&mut connection).await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the subscription is still registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backend.schedule(&[call("c", When::Now)]).await.unwrap();
    assert_eq!(publishes(&mut connection).await, after);
}
