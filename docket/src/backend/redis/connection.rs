//! Connections to Redis: one auto-reconnecting multiplexed connection for commands and
//! scripts, a dedicated connection per consumer for blocking reads, and a dedicated
//! connection per pub/sub subscription.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};
use redis::{AsyncConnectionConfig, Client, RedisResult};

use super::keys::{GROUP, Keys};

/// How long one command or script may take before the caller gets an error. Generous:
/// a batch schedule or a `clear` of a large docket is one script.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long establishing a connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection backoff of the command connection: 100 ms doubling, at most 5 s apart,
/// 6 tries per disruption (the next command starts another round).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);
const RECONNECT_RETRIES: usize = 6;

/// The connection every command and script goes through. It reconnects by itself after
/// a disruption (a Redis restart); the command that saw the disruption fails. Opening it
/// fails at once when the server cannot be reached (callers decide whether to wait).
pub(super) async fn command_connection(client: &Client) -> RedisResult<ConnectionManager> {
    // The manager retries its first connection too, for seconds; one plain attempt
    // first makes an unreachable server an immediate, clear error.
    drop(blocking_connection(client).await?);
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
        .set_number_of_retries(RECONNECT_RETRIES);
    ConnectionManager::new_with_config(client.clone(), config).await
}

/// A consumer's own connection for `XREADGROUP ... BLOCK`: never shared, and without a
/// response timeout, which would cut every blocking read short.
pub(super) async fn blocking_connection(client: &Client) -> RedisResult<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(None);
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A fresh pub/sub connection.
pub(super) async fn pubsub_connection(client: &Client) -> RedisResult<PubSub> {
    match tokio::time::timeout(CONNECTION_TIMEOUT, client.get_async_pubsub()).await {
        Ok(connection) => connection,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out connecting for pub/sub",
        ))),
    }
}

/// Creates the stream and its consumer group unless they exist. The group starts at the
/// beginning of the stream, so messages added while it was missing are delivered.
pub(super) async fn ensure_group(
    connection: &mut ConnectionManager,
    keys: &Keys,
) -> RedisResult<()> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.stream())
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(connection)
        .await;
    match created {
        Err(error) if error.code() != Some("BUSYGROUP") => Err(error),
        _ => Ok(()),
    }
}

/// The group is missing: Redis restarted without persistence, or someone removed it.
pub(super) fn is_missing_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}
