//! [`RedisResultStore`]: results on a Redis of their own (another URL, or another
//! database of the same server).

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::ResultStore;
use crate::backend::BoxError;

/// Keeps results on a Redis of their own — another server, or another database of the
/// docket's server — with `SET PX`, `GET` and `DEL` on a connection that reconnects by
/// itself.
///
/// ```no_run
/// # async fn connect() -> Result<(), docket::BoxError> {
/// // Queues in database 0, results in database 1.
/// let results = docket::RedisResultStore::connect("redis://localhost:6379/1").await?;
/// let docket = docket::Docket::builder("orders", "redis://localhost:6379/0")
///     .result_store(results)
///     .connect()
///     .await?;
/// # let _ = docket; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisResultStore {
    connection: ConnectionManager,
}

impl std::fmt::Debug for RedisResultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResultStore").finish_non_exhaustive()
    }
}

impl RedisResultStore {
    /// Connects to the Redis at `url` (`redis://`, `rediss://` or `unix://`, with the
    /// database to use as its path). A standalone server only (no cluster or Sentinel
    /// URLs); `rediss://` trusts the system's root certificates.
    ///
    /// # Errors
    /// The URL is not a Redis URL, or nothing answered there.
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        if url.starts_with("rediss://") {
            // One crypto provider for the process, as the docket's own connections use.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        }
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        Ok(Self { connection })
    }
}

impl ResultStore for RedisResultStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), BoxError> {
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let () = self.connection.clone().pset_ex(key, value, millis).await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>, BoxError> {
        Ok(self.connection.clone().get(key).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), BoxError> {
        let _: usize = self.connection.clone().del(key).await?;
        Ok(())
    }
}
