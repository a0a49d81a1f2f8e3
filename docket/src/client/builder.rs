//! [`DocketBuilder`]: how a [`Docket`] handle connects, and what it keeps.

use std::sync::Arc;
use std::time::Duration;

use super::{Docket, Inner};
use crate::backend::{self, BackendConfig, BackendUrl, ConnectionOptions, redact};
use crate::error::{Error, Result};
use crate::execution::Core;
use crate::results::{ResultSettings, ResultStore};
use crate::strikes::{StrikeFollower, Strikes};

/// The default `execution_ttl`: terminal records and results live 15 minutes.
pub const DEFAULT_EXECUTION_TTL: Duration = Duration::from_mins(15);

/// The default number of deliveries of one run before it is dead-lettered.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;

/// The default largest serialized arguments a call may carry: 16 MiB.
pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 16 * 1024 * 1024;

/// Options for [`Docket::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DocketBuilder {
    name: String,
    url: String,
    execution_ttl: Duration,
    max_payload_size: usize,
    max_deliveries: u32,
    connections: ConnectionOptions,
    results: ResultSettings,
}

impl DocketBuilder {
    pub(super) fn new(name: String, url: String) -> Self {
        Self {
            name,
            url,
            execution_ttl: DEFAULT_EXECUTION_TTL,
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
            max_deliveries: DEFAULT_MAX_DELIVERIES,
            connections: ConnectionOptions::default(),
            results: ResultSettings::default(),
        }
    }

    /// How many times one run may be delivered — its first delivery and redeliveries
    /// after its worker died — before it is dead-lettered: recorded FAILED with a reason
    /// instead of handed to yet another worker it may kill. Default
    /// [`DEFAULT_MAX_DELIVERIES`]; applies to the workers that use this handle.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = deliveries.max(1);
        self
    }

    /// The largest serialized arguments (bytes of JSON) a call may carry; larger calls
    /// are refused by `add` with [`Error::PayloadTooLarge`] before anything is written.
    /// Default [`DEFAULT_MAX_PAYLOAD_SIZE`].
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// How this handle connects to Redis: pool size, timeouts, keepalive, reconnection
    /// backoff and TLS files ([`ConnectionOptions`]). `memory://` ignores them.
    ///
    /// ```no_run
    /// # async fn example() -> docket::Result<()> {
    /// let docket = docket::Docket::builder("orders", "rediss://redis.internal:6380/0")
    ///     .connections(
    ///         docket::ConnectionOptions::default()
    ///             .pool_size(4)
    ///             .tls_ca_file("/etc/docket/ca.pem"),
    ///     )
    ///     .connect()
    ///     .await?;
    /// # let _ = docket; Ok(()) }
    /// ```
    pub fn connections(mut self, options: ConnectionOptions) -> Self {
        self.connections = options;
        self
    }

    /// How long the records, results and progress of the calls this handle adds are
    /// kept once their runs end (default 15 minutes). `Duration::ZERO` is
    /// fire-and-forget: nothing is kept once a run ends.
    ///
    /// The TTL travels with each call: whichever worker ends the run honours it, and
    /// the call's retries and the next runs of a perpetual task inherit it.
    ///
    /// ```no_run
    /// # async fn example() -> docket::Result<()> {
    /// use std::time::Duration;
    /// let events = docket::Docket::builder("orders", "redis://localhost:6379/0")
    ///     .execution_ttl(Duration::ZERO) // nothing is kept, by any worker
    ///     .connect()
    ///     .await?;
    /// # let _ = events; Ok(()) }
    /// ```
    pub fn execution_ttl(mut self, ttl: Duration) -> Self {
        self.execution_ttl = ttl;
        self
    }

    /// Keeps results in `store` instead of the docket's own backend. A worker built on
    /// this handle puts each result there before it records the run's end, for as long
    /// as the call's `execution_ttl`; [`Execution::result`](crate::Execution::result)
    /// reads it back from there. Give producers and workers the same store.
    ///
    /// A store that fails to keep a result fails the run: it ends FAILED with an error
    /// naming the store's error (retried only if the task's retry policy retries
    /// failures). Without a store, results stay in the docket's own backend, written
    /// with the run's end in one atomic step.
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), docket::BoxError> {
    /// let results = docket::RedisResultStore::connect("redis://localhost:6379/1").await?;
    /// let docket = docket::Docket::builder("orders", "redis://localhost:6379/0")
    ///     .result_store(results)
    ///     .connect()
    ///     .await?;
    /// # let _ = docket; Ok(()) }
    /// ```
    pub fn result_store(mut self, store: impl ResultStore) -> Self {
        self.results.store = Some(Arc::new(store));
        self
    }

    /// The largest result (bytes of JSON) a run may return, whichever store keeps it; a
    /// larger one fails the run with an error naming its size and the limit. Default:
    /// no limit. Applies to the workers that use this handle.
    pub fn max_result_size(mut self, bytes: usize) -> Self {
        self.results.max_size = Some(bytes);
        self
    }

    /// Connects.
    ///
    /// # Errors
    /// [`Error::InvalidName`] or [`Error::InvalidUrl`] naming the bad value, or the
    /// backend's connection error.
    pub async fn connect(self) -> Result<Docket> {
        validate_name(&self.name)?;
        let url = BackendUrl::parse(&self.url)?;
        if !self.execution_ttl.is_zero() && self.execution_ttl < Duration::from_millis(1) {
            return Err(Error::InvalidOption {
                name: "execution_ttl",
                value: format!("{:?}", self.execution_ttl),
                reason: "use zero (fire-and-forget) or at least one millisecond".into(),
            });
        }
        let config = BackendConfig {
            name: self.name.clone(),
            execution_ttl: self.execution_ttl,
            max_deliveries: self.max_deliveries,
            connections: self.connections.clone(),
            shown_url: redact(&self.url),
        };
        let backend = backend::open(&url, config).await?;
        let strikes = Strikes::new();
        let follower = StrikeFollower::spawn(backend.clone(), strikes.clone(), self.name.clone());
        Ok(Docket {
            inner: Arc::new(Inner {
                core: Arc::new(Core {
                    name: self.name,
                    backend,
                    execution_ttl: self.execution_ttl,
                    results: self.results,
                }),
                url: self.url,
                max_payload_size: self.max_payload_size,
                strikes,
                _follower: follower,
            }),
        })
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['{', '}']) || name.chars().any(char::is_whitespace) {
        return Err(Error::InvalidName(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_braces_or_spaces_are_refused() {
        assert!(validate_name("orders").is_ok());
        for bad in ["", "a b", "{orders}", "x}"] {
            let error = validate_name(bad).unwrap_err().to_string();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }
}
