//! Where results are kept: a store of their own (another Redis database, or one that
//! fails), the size limit, and results that expire with their call's TTL.

use std::sync::Arc;
use std::time::Duration;

use docket::{BoxError, Error, ExecutionState, MemoryResultStore, RedisResultStore, ResultStore};

use crate::support::{RedisServer, Target, drain, on_both_backends, wait_for};
use crate::tasks::AddNumbers;

/// Returns `text` as it is.
#[docket::task]
async fn echo(text: String) -> String {
    text
}

/// The URL of database 1 of `server`, whose database 0 its dockets use.
fn second_database(server: &RedisServer) -> String {
    let url = server.url();
    let base = url
        .strip_suffix("/0")
        .expect("the test server's URL names database 0");
    format!("{base}/1")
}

/// The key a store keeps the result of the first generation of `key` under.
fn first_result_key(target: &Target, key: &str) -> String {
    format!("{}:results:{key}:1", target.name)
}

/// The remaining TTL in milliseconds of `key` on the Redis at `url` (-2: no such key).
fn pttl(url: &str, key: &str) -> i64 {
    let mut connection = ::redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .unwrap();
    ::redis::cmd("PTTL")
        .arg(key)
        .query(&mut connection)
        .unwrap()
}

async fn a_store_on_a_second_database_keeps_the_results(target: Target) {
    // A memory docket's results go to a server of their own.
    let own_server = target.redis.is_none().then(RedisServer::start);
    let server = target.redis.as_ref().or(own_server.as_ref()).unwrap();
    let results_url = second_database(server);
    let store = RedisResultStore::connect(&results_url).await.unwrap();
    let ttl = Duration::from_mins(10);
    let docket = target
        .builder()
        .execution_ttl(ttl)
        .result_store(store)
        .connect()
        .await
        .unwrap();
    let execution = docket.add(AddNumbers::new(20, 22)).await.unwrap();
    drain(&docket).await;

    assert_eq!(execution.result().await.unwrap(), 42);
    let stored = first_result_key(&target, execution.key());
    let left = pttl(&results_url, &stored);
    assert!(
        left > 0 && u128::try_from(left).unwrap() <= ttl.as_millis(),
        "the result is in database 1 for the call's TTL, `{stored}` has PTTL {left}"
    );
    assert_eq!(
        pttl(&server.url(), &stored),
        -2,
        "the result is not in database 0"
    );
    let record = execution.record().await.unwrap().unwrap();
    assert!(record.has_result, "the record says a result is kept");
}

/// A store that cannot keep anything.
struct Sealed;

impl ResultStore for Sealed {
    async fn put(&self, _key: &str, _value: &str, _ttl: Duration) -> Result<(), BoxError> {
        Err("the vault is sealed".into())
    }

    async fn get(&self, _key: &str) -> Result<Option<String>, BoxError> {
        Ok(None)
    }

    async fn delete(&self, _key: &str) -> Result<(), BoxError> {
        Ok(())
    }
}

async fn a_failing_store_fails_the_run_naming_its_error(target: Target) {
    let docket = target
        .builder()
        .result_store(Sealed)
        .connect()
        .await
        .unwrap();
    let execution = docket.add(AddNumbers::new(1, 2)).await.unwrap();
    drain(&docket).await;

    assert_eq!(execution.state().await.unwrap(), ExecutionState::Failed);
    match execution.result().await {
        Err(Error::TaskFailed { error, .. }) => {
            assert!(error.message().contains("the vault is sealed"), "{error}");
        }
        other => panic!("expected the run to fail, got {other:?}"),
    }
}

/// A store that keeps results but can no longer give them back.
#[derive(Default)]
struct WriteOnly(MemoryResultStore);

impl ResultStore for WriteOnly {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), BoxError> {
        self.0.put(key, value, ttl).await
    }

    async fn get(&self, _key: &str) -> Result<Option<String>, BoxError> {
        Err("the archive is offline".into())
    }

    async fn delete(&self, key: &str) -> Result<(), BoxError> {
        self.0.delete(key).await
    }
}

async fn a_store_that_cannot_answer_fails_result_naming_its_error(target: Target) {
    let docket = target
        .builder()
        .result_store(WriteOnly::default())
        .connect()
        .await
        .unwrap();
    let execution = docket.add(AddNumbers::new(1, 2)).await.unwrap();
    drain(&docket).await;

    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
    match execution.result().await {
        Err(error @ Error::ResultStore { .. }) => {
            assert!(
                error.to_string().contains("the archive is offline"),
                "{error}"
            );
        }
        other => panic!("expected the store's error, got {other:?}"),
    }
}

async fn an_oversize_result_fails_the_run_naming_its_size(target: Target) {
    // On the docket's own storage and on a store of its own alike.
    let own = target
        .builder()
        .max_result_size(16)
        .connect()
        .await
        .unwrap();
    let custom = target
        .builder()
        .max_result_size(16)
        .result_store(MemoryResultStore::new())
        .connect()
        .await
        .unwrap();
    for docket in [own, custom] {
        // 22 bytes of JSON: 20 letters and their quotes.
        let large = docket.add(Echo::new("x".repeat(20))).await.unwrap();
        let small = docket.add(Echo::new("fits".into())).await.unwrap();
        drain(&docket).await;

        assert_eq!(small.result().await.unwrap(), "fits");
        assert_eq!(large.state().await.unwrap(), ExecutionState::Failed);
        match large.result().await {
            Err(Error::TaskFailed { error, .. }) => {
                let message = error.message();
                assert!(
                    message.contains("22 bytes") && message.contains("16 bytes"),
                    "{message}"
                );
            }
            other => panic!("expected the run to fail, got {other:?}"),
        }
    }
}

async fn results_expire_with_the_call_s_ttl(target: Target) {
    let store = Arc::new(MemoryResultStore::new());
    // The worker's handle would keep results 15 minutes; the producer asks for 2 s.
    let worker_handle = target
        .builder()
        .result_store(store.clone())
        .connect()
        .await
        .unwrap();
    let producer = target
        .builder()
        .execution_ttl(Duration::from_secs(2))
        .result_store(store.clone())
        .connect()
        .await
        .unwrap();
    let execution = producer.add(AddNumbers::new(2, 3)).await.unwrap();
    drain(&worker_handle).await;

    assert_eq!(execution.result().await.unwrap(), 5);
    let stored = first_result_key(&target, execution.key());
    assert!(
        store.get(&stored).await.unwrap().is_some(),
        "the result is in the store"
    );
    // Expired long before the worker's own TTL would have let it go.
    wait_for(
        Duration::from_secs(15),
        "the result expires with its call's TTL of 2 s",
        || async {
            match store.get(&stored).await.unwrap() {
                None => Ok(()),
                Some(value) => Err(value),
            }
        },
    )
    .await;
}

on_both_backends!(
    a_store_on_a_second_database_keeps_the_results,
    a_failing_store_fails_the_run_naming_its_error,
    a_store_that_cannot_answer_fails_result_naming_its_error,
    an_oversize_result_fails_the_run_naming_its_size,
    results_expire_with_the_call_s_ttl,
);
