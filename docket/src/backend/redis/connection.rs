//! Connections to Redis: a small pool of auto-reconnecting multiplexed connections for
//! commands and scripts, a dedicated connection per consumer for blocking reads, and a
//! dedicated connection per pub/sub subscription. On a cluster, commands and blocking
//! reads go through cluster connections (which follow `MOVED`/`ASK` redirects) and
//! subscriptions through a plain connection to one node: `PUBLISH` reaches every node
//! of a cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, Cmd, IntoConnectionInfo, Pipeline, RedisFuture,
    RedisResult, TlsCertificates, Value,
};

use super::keys::{GROUP, Keys};
use crate::backend::ConnectionOptions;
use crate::backend::url::RedisUrl;
use crate::error::{Error, Result};

/// Reconnection attempts of a command connection per disruption (the next command
/// starts another round).
const RECONNECT_RETRIES: usize = 6;
/// A blocking read waits at most a few seconds; its connection allows this much.
const BLOCKING_RESPONSE_TIMEOUT: Duration = Duration::from_mins(1);

/// A connection to a node or to a cluster; commands and scripts run on either.
#[derive(Clone)]
pub(super) enum Connection {
    /// Reconnects by itself after a disruption.
    Managed(ConnectionManager),
    /// One node, dedicated to one reader.
    Node(MultiplexedConnection),
    /// A cluster: routes each command to the node serving its key's slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(connection) => connection.req_packed_command(cmd),
            Self::Node(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(connection) => connection.get_db(),
            Self::Node(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

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
    /// One node: the server itself, or the node of a cluster named in the URL.
    node: Client,
    cluster: Option<ClusterClient>,
    options: ConnectionOptions,
    /// The URL with its password hidden, for errors.
    shown: String,
}

impl Endpoint {
    /// Reads the URL and options; connects to nothing yet.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL or a TLS file cannot be used.
    pub(super) fn new(target: &RedisUrl, options: &ConnectionOptions, shown: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: shown.to_owned(),
            reason,
        };
        let mut options = options.clone();
        if let Some(ca) = &target.tls.ca {
            options.tls_ca = Some(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&target.tls.cert, &target.tls.key) {
            options.tls_client = Some((cert.clone(), key.clone()));
        }
        let certificates = if target.is_tls() {
            // One crypto provider for the process, whatever else enabled another.
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(certificates(&options).map_err(invalid)?)
        } else if options.tls_ca.is_some() || options.tls_client.is_some() {
            return Err(invalid(
                "TLS certificates were given for a URL without TLS; use `rediss://`".into(),
            ));
        } else {
            None
        };
        let info = target
            .url
            .as_str()
            .into_connection_info()
            .map_err(|error| invalid(error.to_string()))?;
        let info = info.set_tcp_settings(tcp_settings(&options));
        let node = match &certificates {
            Some(certificates) => Client::build_with_tls(info.clone(), certificates.clone()),
            None => Client::open(info.clone()),
        }
        .map_err(|error| invalid(error.to_string()))?;
        let cluster = if target.cluster {
            let mut builder = ClusterClientBuilder::new(vec![info])
                .connection_timeout(options.connect_timeout)
                .response_timeout(options.response_timeout)
                .min_retry_wait(duration_ms(options.reconnect_min_delay))
                .max_retry_wait(duration_ms(options.reconnect_max_delay))
                .tcp_settings(tcp_settings(&options));
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            Some(
                builder
                    .build()
                    .map_err(|error| invalid(error.to_string()))?,
            )
        } else {
            None
        };
        Ok(Self {
            node,
            cluster,
            options,
            shown: shown.to_owned(),
        })
    }

    /// Whether this is a cluster.
    pub(super) fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The URL with its password hidden.
    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    /// Opens the command connections, once [`node`](Self::node) has shown the server
    /// answers (so that an unreachable server is an immediate error: the connection
    /// manager would retry its first connection for seconds).
    pub(super) async fn pool(&self) -> RedisResult<Pool> {
        let mut connections = Vec::with_capacity(self.options.pool_size);
        for _ in 0..self.options.pool_size {
            connections.push(self.command_connection().await?);
        }
        Ok(Pool {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    async fn command_connection(&self) -> RedisResult<Connection> {
        if let Some(cluster) = &self.cluster {
            return Ok(Connection::Cluster(cluster.get_async_connection().await?));
        }
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(self.options.response_timeout))
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_min_delay(self.options.reconnect_min_delay)
            .set_max_delay(self.options.reconnect_max_delay)
            .set_number_of_retries(RECONNECT_RETRIES);
        Ok(Connection::Managed(
            ConnectionManager::new_with_config(self.node.clone(), config).await?,
        ))
    }

    /// A reader's own connection for `XREADGROUP`/`XREAD ... BLOCK`: never shared, and
    /// without a response timeout that would cut every blocking read short.
    pub(super) async fn blocking(&self) -> RedisResult<Connection> {
        if let Some(cluster) = &self.cluster {
            let config = redis::cluster::ClusterConfig::new()
                .set_connection_timeout(self.options.connect_timeout)
                .set_response_timeout(BLOCKING_RESPONSE_TIMEOUT);
            return Ok(Connection::Cluster(
                cluster.get_async_connection_with_config(config).await?,
            ));
        }
        Ok(Connection::Node(self.node_connection(None).await?))
    }

    /// A plain connection to the node named in the URL.
    async fn node_connection(
        &self,
        response: Option<Duration>,
    ) -> RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(response);
        self.node
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// A one-off connection to the node named in the URL, for server checks.
    pub(super) async fn node(&self) -> RedisResult<MultiplexedConnection> {
        self.node_connection(Some(self.options.response_timeout))
            .await
    }

    /// A fresh pub/sub connection (to the node named in the URL).
    pub(super) async fn pubsub(&self) -> RedisResult<PubSub> {
        match tokio::time::timeout(self.options.connect_timeout, self.node.get_async_pubsub()).await
        {
            Ok(connection) => connection,
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out connecting for pub/sub",
            ))),
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn tcp_settings(options: &ConnectionOptions) -> TcpSettings {
    let settings = TcpSettings::default().set_nodelay(true);
    match options.tcp_keepalive {
        Some(idle) => settings.set_keepalive(
            socket2::TcpKeepalive::new()
                .with_time(idle)
                .with_interval(Duration::from_secs(10)),
        ),
        None => settings,
    }
}

/// Reads the TLS files into what redis-rs takes.
fn certificates(options: &ConnectionOptions) -> std::result::Result<TlsCertificates, String> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|error| format!("cannot read the {what} `{}`: {error}", path.display()))
    };
    let root_cert = match &options.tls_ca {
        Some(path) => Some(read("TLS certificate authority", path)?),
        None => None,
    };
    let client_tls = match &options.tls_client {
        Some((cert, key)) => Some(ClientTlsConfig {
            client_cert: read("TLS client certificate", cert)?,
            client_key: read("TLS client key", key)?,
        }),
        None => None,
    };
    Ok(TlsCertificates {
        client_tls,
        root_cert,
    })
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
