//! Opening one connection: where the server is now (asking the Sentinels when the URL
//! names a master group), with the credentials as they are now (a provider's, a
//! password file's re-read, or the URL's), over TLS when the URL says so.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{MultiplexedConnection, PubSub};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    AsyncConnectionConfig, Client, ClientTlsConfig, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    RedisError, RedisResult, TlsCertificates,
};
use tokio::sync::watch;

use super::sentinel;
use crate::backend::url::{RedisUrl, SentinelTarget, Topology};
use crate::backend::{ConnectionOptions, Credentials};
use crate::error::{Error, Result};

/// A blocking read waits at most a few seconds; a cluster connection for one allows
/// this much (the read's own deadline is shorter).
const BLOCKING_RESPONSE_TIMEOUT: Duration = Duration::from_mins(1);

/// Where the data lives, as the dialer reaches it.
enum Place {
    /// One server, as the URL names it.
    Server(ConnectionInfo),
    /// A cluster, through the node the URL names.
    Cluster(ConnectionInfo),
    /// The master of a group the Sentinels monitor.
    Sentinel(Sentinels),
}

/// The Sentinels of a master group, and what they last said.
pub(super) struct Sentinels {
    pub target: SentinelTarget,
    /// Each Sentinel's connection settings (its own credentials, no database).
    pub infos: Vec<ConnectionInfo>,
    /// The Sentinel that answered last, asked first next time.
    pub preferred: AtomicUsize,
    /// The master's address as last resolved.
    pub master: Mutex<Option<(String, u16)>>,
    /// The master a failover is taking over from, not to be dialed until it ends (what
    /// it took now, the failover would discard), and until when at most.
    held: Mutex<Option<((String, u16), Instant)>>,
}

/// How long writes wait for a failover that neither ends nor reports its abort.
const HOLD_LIMIT: Duration = Duration::from_secs(15);

impl Sentinels {
    /// Whether `address` is a master being failed over.
    fn is_held(&self, address: &(String, u16)) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match &*held {
            Some((from, until)) if Instant::now() < *until => from == address,
            Some(_) => {
                *held = None;
                false
            }
            None => false,
        }
    }
}

/// Opens connections of every kind to a docket's server.
pub(super) struct Dialer {
    place: Place,
    /// The data nodes' user as the URL names it.
    username: Option<String>,
    certificates: Option<TlsCertificates>,
    pub options: ConnectionOptions,
    /// The URL with its password hidden, for errors.
    pub shown: String,
    /// Bumped each time the Sentinels switch masters: connections opened before are to
    /// be replaced.
    switches: watch::Sender<u64>,
    generation: AtomicU64,
}

impl Dialer {
    /// Reads the URL and options; connects to nothing yet.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL or a TLS file cannot be used.
    pub(super) fn new(target: &RedisUrl, options: &ConnectionOptions, shown: &str) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: shown.to_owned(),
            reason,
        };
        let options = target.options.apply(options);
        let certificates = if target.is_tls() {
            // One crypto provider for the process, whatever else enabled another.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            Some(certificates(&options).map_err(invalid)?)
        } else if options.tls_ca.is_some() || options.tls_client.is_some() {
            return Err(invalid(
                "TLS certificates were given for a URL without TLS; use `rediss://`".into(),
            ));
        } else {
            None
        };
        let sentinel = matches!(target.topology, Topology::Sentinel(_));
        let tcp = tcp_settings(&options, sentinel);
        let info = |url: &str| {
            url.into_connection_info()
                .map(|info| info.set_tcp_settings(tcp.clone()))
                .map_err(|error| invalid(error.to_string()))
        };
        let place = match &target.topology {
            Topology::Server(url) => Place::Server(info(url)?),
            Topology::Cluster(url) => Place::Cluster(info(url)?),
            Topology::Sentinel(sentinel) => {
                let mut infos = Vec::with_capacity(sentinel.sentinels.len());
                for (host, port) in &sentinel.sentinels {
                    let one = info(&sentinel.sentinel_url(host, *port))?;
                    let mut redis = one.redis_settings().clone();
                    if let Some(user) = &target.options.sentinel_username {
                        redis = redis.set_username(user);
                    }
                    if let Some(password) = &target.options.sentinel_password {
                        redis = redis.set_password(password);
                    }
                    infos.push(one.set_redis_settings(redis));
                }
                Place::Sentinel(Sentinels {
                    target: sentinel.clone(),
                    infos,
                    preferred: AtomicUsize::new(0),
                    master: Mutex::new(None),
                    held: Mutex::new(None),
                })
            }
        };
        // The data nodes' user: the URL's (checked here for a Sentinel URL, whose data
        // nodes are not known yet, with a stand-in address).
        let username = match &target.topology {
            Topology::Server(url) | Topology::Cluster(url) => info(url)?,
            Topology::Sentinel(sentinel) => info(&sentinel.node_url("127.0.0.1", 6379))?,
        }
        .redis_settings()
        .username()
        .map(str::to_owned);
        Ok(Self {
            place,
            username,
            certificates,
            options,
            shown: shown.to_owned(),
            switches: watch::Sender::new(0),
            generation: AtomicU64::new(0),
        })
    }

    /// Whether the data lives in a cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self.place, Place::Cluster(_))
    }

    /// The master group's Sentinels, for a `redis+sentinel://` URL.
    pub(super) fn sentinels(&self) -> Option<&Sentinels> {
        match &self.place {
            Place::Sentinel(sentinels) => Some(sentinels),
            _ => None,
        }
    }

    /// How many times the Sentinels have switched masters since this dialer started.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Wakes whoever waits on a connection to the old master.
    pub(super) fn switched(&self) -> watch::Receiver<u64> {
        self.switches.subscribe()
    }

    /// The master moved, or is being moved: connections opened before now are to be
    /// replaced.
    pub(super) fn reconnect_all(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.switches.send_replace(generation);
    }

    /// A failover of the master at `from` started: its connections are dropped, and it
    /// is not dialed again until the failover ends (or [`HOLD_LIMIT`] passes).
    pub(super) fn hold_writes(&self, from: (String, u16)) {
        if let Some(sentinels) = self.sentinels() {
            *sentinels
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner) =
                Some((from, Instant::now() + HOLD_LIMIT));
            self.reconnect_all();
        }
    }

    /// The failover ended, or was given up.
    pub(super) fn release_writes(&self) {
        if let Some(sentinels) = self.sentinels() {
            *sentinels
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    /// A Redis client for the data node to connect to now, with today's credentials.
    async fn client(&self) -> RedisResult<Client> {
        let info = match &self.place {
            Place::Server(info) | Place::Cluster(info) => info.clone(),
            Place::Sentinel(sentinels) => {
                let (host, port) = sentinel::resolve(sentinels, self).await?;
                if sentinels.is_held(&(host.clone(), port)) {
                    return Err(RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        format!(
                            "the Sentinels are failing `{}` over from {host}:{port}; waiting \
                             for the new master",
                            sentinels.target.master
                        ),
                    )));
                }
                sentinels
                    .target
                    .node_url(&host, port)
                    .into_connection_info()?
                    .set_tcp_settings(tcp_settings(&self.options, true))
            }
        };
        let info = match self.credentials().await? {
            Some(credentials) => {
                let mut redis = info.redis_settings().clone();
                if let Some(user) = &credentials.username {
                    redis = redis.set_username(user);
                }
                info.set_redis_settings(redis.set_password(&credentials.password))
            }
            None => info,
        };
        self.client_for(info)
    }

    /// A client for `info`, over TLS when the URL asks for it.
    pub(super) fn client_for(&self, info: ConnectionInfo) -> RedisResult<Client> {
        match &self.certificates {
            Some(certificates) => Client::build_with_tls(info, certificates.clone()),
            None => Client::open(info),
        }
    }

    /// The credentials to use now, when they do not come from the URL: the provider's,
    /// or the URL's user with the password file's current contents.
    async fn credentials(&self) -> RedisResult<Option<Credentials>> {
        if let Some(provider) = &self.options.credentials {
            return provider.get().await.map(Some).map_err(|error| {
                RedisError::from((
                    ErrorKind::AuthenticationFailed,
                    "the credentials provider failed",
                    error.to_string(),
                ))
            });
        }
        let Some(path) = &self.options.password_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|error| {
            RedisError::from((
                ErrorKind::AuthenticationFailed,
                "cannot read the password file",
                format!("`{}`: {error}", path.display()),
            ))
        })?;
        Ok(Some(Credentials {
            username: self.username.clone(),
            password: text.trim().to_owned(),
        }))
    }

    /// A multiplexed connection to the server (the master, with Sentinels), answering
    /// within `response` when given.
    pub(super) async fn node(
        &self,
        response: Option<Duration>,
    ) -> RedisResult<MultiplexedConnection> {
        let client = self.client().await?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(response);
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        if let Some(sentinels) = self.sentinels() {
            sentinel::check_master(&mut connection, sentinels).await?;
        }
        Ok(connection)
    }

    /// A cluster connection, answering within `response`.
    pub(super) async fn cluster(
        &self,
        response: Option<Duration>,
    ) -> RedisResult<ClusterConnection> {
        let Place::Cluster(info) = &self.place else {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "not a cluster URL",
            )));
        };
        let options = &self.options;
        let mut builder = ClusterClientBuilder::new(vec![info.clone()])
            .connection_timeout(options.connect_timeout)
            .response_timeout(response.unwrap_or(BLOCKING_RESPONSE_TIMEOUT))
            .min_retry_wait(duration_ms(options.reconnect_min_delay))
            .max_retry_wait(duration_ms(options.reconnect_max_delay))
            .tcp_settings(tcp_settings(options, false));
        if let Some(credentials) = self.credentials().await? {
            if let Some(user) = &credentials.username {
                builder = builder.username(user);
            }
            builder = builder.password(&credentials.password);
        }
        if let Some(certificates) = &self.certificates {
            builder = builder.certs(certificates.clone());
        }
        let config = ClusterConfig::new()
            .set_connection_timeout(options.connect_timeout)
            .set_response_timeout(response.unwrap_or(BLOCKING_RESPONSE_TIMEOUT));
        builder
            .build()?
            .get_async_connection_with_config(config)
            .await
    }

    /// A pub/sub connection: to the master with Sentinels, else to the node the URL
    /// names (`PUBLISH` reaches every node of a cluster).
    pub(super) async fn pubsub(&self) -> RedisResult<PubSub> {
        let connecting = async {
            let client = self.client().await?;
            let pubsub = client.get_async_pubsub().await?;
            Ok::<_, RedisError>(pubsub)
        };
        match tokio::time::timeout(self.options.connect_timeout, connecting).await {
            Ok(connection) => connection,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out connecting for pub/sub",
            ))),
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Keepalive after the configured idle time. Connections to a master found through
/// Sentinels probe sooner unless told otherwise, so that a master that dies silently (a
/// partition, a frozen host) is noticed in seconds and the failover followed.
pub(super) fn tcp_settings(options: &ConnectionOptions, sentinel: bool) -> TcpSettings {
    let settings = TcpSettings::default().set_nodelay(true);
    if sentinel && !options.tcp_keepalive_set {
        return settings.set_keepalive(
            socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(5))
                .with_interval(Duration::from_secs(1))
                .with_retries(3),
        );
    }
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
