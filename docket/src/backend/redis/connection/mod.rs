//! Connections to Redis.
//!
//! - Commands and scripts go over a small pool of multiplexed [`Connection`]s, each of
//!   which dials again after a disruption ([`link`]).
//! - Each reader has a [`Blocking`] connection of its own for `XREADGROUP`/`XREAD ...
//!   BLOCK`.
//! - Subscriptions get pub/sub connections.
//!
//! Where a connection goes is the [`dial`]er's business: the server the URL names, any
//! node of a cluster (whose connections follow `MOVED`/`ASK` redirects; subscriptions
//! go to one node, as `PUBLISH` reaches every node), or the master a group of
//! Sentinels names now ([`sentinel`]), followed through failovers.

mod dial;
mod link;
mod sentinel;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use redis::RedisResult;
use redis::aio::{MultiplexedConnection, PubSub};

use self::dial::Dialer;
pub(super) use self::link::{Blocking, Connection};
use super::keys::{GROUP, Keys};
use crate::backend::ConnectionOptions;
use crate::backend::url::RedisUrl;
use crate::error::Result;

/// The command connections, handed out in turn.
pub(super) struct Pool {
    connections: Vec<Connection>,
    next: AtomicUsize,
}

impl Pool {
    /// The next connection (a cheap handle on a shared one).
    pub(super) fn get(&self) -> Connection {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[index].clone()
    }
}

/// Where a docket's server is, with how to open each kind of connection to it.
pub(super) struct Endpoint {
    dialer: Arc<Dialer>,
    /// Follows the Sentinels' switches of master while the endpoint lives.
    follower: Option<tokio::task::AbortHandle>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(follower) = &self.follower {
            follower.abort();
        }
    }
}

impl Endpoint {
    /// Reads the URL and options (the URL's query overriding `options`); connects to
    /// nothing yet.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`](crate::Error::InvalidUrl) when the URL or a TLS file
    /// cannot be used.
    pub(super) fn new(target: &RedisUrl, options: &ConnectionOptions, shown: &str) -> Result<Self> {
        Ok(Self {
            dialer: Arc::new(Dialer::new(target, options, shown)?),
            follower: None,
        })
    }

    /// Whether this is a cluster.
    pub(super) fn is_cluster(&self) -> bool {
        self.dialer.is_cluster()
    }

    /// The URL with its password hidden.
    pub(super) fn shown(&self) -> &str {
        &self.dialer.shown
    }

    /// The options in force (the URL's over the builder's).
    pub(super) fn options(&self) -> &ConnectionOptions {
        &self.dialer.options
    }

    /// Opens the command connections, once [`node`](Self::node) has shown the server
    /// answers, and starts following the Sentinels' switches of master.
    pub(super) async fn pool(&mut self) -> RedisResult<Pool> {
        let size = self.dialer.options.pool_size;
        let mut connections = Vec::with_capacity(size);
        for _ in 0..size {
            let connection = Connection::new(Arc::clone(&self.dialer));
            connection.connect().await?;
            connections.push(connection);
        }
        if self.dialer.sentinels().is_some() && self.follower.is_none() {
            let follower = tokio::spawn(sentinel::follow_switches(Arc::clone(&self.dialer)));
            self.follower = Some(follower.abort_handle());
        }
        Ok(Pool {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// A reader's own connection for `XREADGROUP`/`XREAD ... BLOCK`.
    pub(super) async fn blocking(&self) -> RedisResult<Blocking> {
        Blocking::open(&self.dialer).await
    }

    /// A one-off connection to the server (the master, with Sentinels; the node the URL
    /// names, on a cluster), for server checks.
    pub(super) async fn node(&self) -> RedisResult<MultiplexedConnection> {
        self.dialer
            .node(Some(self.dialer.options.response_timeout))
            .await
    }

    /// With Sentinels, a watch that changes each time they switch masters: a
    /// connection kept apart from the pool (a subscriber's) moves over when it does.
    pub(super) fn switched(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.dialer.sentinels().map(|_| self.dialer.switched())
    }

    /// A fresh pub/sub connection: to the master with Sentinels, else to the node the
    /// URL names.
    pub(super) async fn pubsub(&self) -> RedisResult<PubSub> {
        self.dialer.pubsub().await
    }
}

/// Creates the stream and its consumer group unless they exist. The group starts at the
/// beginning of the stream, so messages added while it was missing are delivered.
pub(super) async fn ensure_group(connection: &mut Connection, keys: &Keys) -> RedisResult<()> {
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
