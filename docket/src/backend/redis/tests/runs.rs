//! Messages only a hand on the stream can write: stale copies and malformed entries.

use super::*;

#[tokio::test]
async fn stale_and_malformed_messages_are_refused_at_claim() {
    let store = Store::on_redis();
    let backend = store.open("stale", TTL).await;
    let mut connection = store.redis().await.unwrap();
    backend.schedule(&[call("k", When::Now)]).await.unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    claim_one(&mut consumer).await;

    // A copy of generation 0 of `k`, and a message without a function.
    let _: String = connection
        .xadd(
            "stale:stream",
            "*",
            &[
                ("key", "k"),
                ("when", "2025-01-01T00:00:00.000Z"),
                ("function", "send_email"),
                ("args", "{}"),
                ("attempt", "1"),
                ("generation", "0"),
            ],
        )
        .await
        .unwrap();
    let _: String = connection
        .xadd(
            "stale:stream",
            "*",
            &[("key", "nobody"), ("generation", "1")],
        )
        .await
        .unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert!(claimed.deliveries.is_empty());
    assert_eq!(
        claimed.superseded,
        [("k".to_owned(), "send_email".to_owned())]
    );
    let length: usize = connection.xlen("stale:stream").await.unwrap();
    assert_eq!(length, 1, "only the running message of `k` is left");
    assert_eq!(backend.live_counts().await.unwrap().running, 1);
    // A message no docket call wrote leaves a record saying why it never ran.
    let nobody = backend.record("nobody").await.unwrap().unwrap();
    assert_eq!(nobody.state, ExecutionState::Failed);
    let error = nobody.error.unwrap();
    assert!(
        error.message().contains("is missing"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn a_malformed_message_fails_the_record_that_points_at_it() {
    let store = Store::on_redis();
    let backend = store.open("malformed", TTL).await;
    let mut connection = store.redis().await.unwrap();
    let id: String = connection
        .xadd(
            "malformed:stream",
            "*",
            &[("key", "k"), ("generation", "1")],
        )
        .await
        .unwrap();
    let () = connection
        .hset_multiple(
            "malformed:runs:k",
            &[
                ("state", "QUEUED"),
                ("generation", "1"),
                ("when", "2025-01-01T00:00:00.000Z"),
                ("function", "f"),
                ("args", "{}"),
                ("stream_id", id.as_str()),
            ],
        )
        .await
        .unwrap();
    let mut consumer = backend.consumer("w1").await.unwrap();
    let claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert!(claimed.deliveries.is_empty() && claimed.superseded.is_empty());
    let record = backend.record("k").await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Failed);
    let error = record.error.unwrap();
    assert!(error.is_bad_arguments(), "{error:?}");
    assert!(error.message().contains(&id), "{}", error.message());
    assert!(
        error.message().contains("is missing"),
        "{}",
        error.message()
    );
    assert!(backend.live_counts().await.unwrap().is_empty());
}
