//! How a docket connects to Redis: pool size, timeouts, keepalive, reconnection, TLS,
//! credentials, and how many replicas must hold a write before it counts.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Connection settings for a Redis-backed docket ([`DocketBuilder::connections`]);
/// `memory://` ignores them.
///
/// docket's connections are multiplexed: one connection carries any number of
/// concurrent commands, so the defaults suit most workers. Raise [`pool_size`] for a
/// process that issues very many commands at once (the guide's `max_connections`).
///
/// Every setting here can also ride in the URL's query string
/// (`redis://host/0?max_connections=4&response_timeout=5s`), so a deployment configured
/// only by `DOCKET_URL` can tune it; a setting in the URL takes precedence over the same
/// setting given here.
///
/// [`DocketBuilder::connections`]: crate::DocketBuilder::connections
/// [`pool_size`]: Self::pool_size
///
/// ```
/// use std::time::Duration;
/// use docket::ConnectionOptions;
///
/// let options = ConnectionOptions::default()
///     .pool_size(4)
///     .connect_timeout(Duration::from_secs(2))
///     .tcp_keepalive(Some(Duration::from_secs(30)))
///     .tls_ca_file("/etc/docket/ca.pem");
/// assert_eq!(options.get_pool_size(), 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct ConnectionOptions {
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) tcp_keepalive: Option<Duration>,
    /// Keepalive was chosen (here or in the URL) rather than left at its default.
    pub(crate) tcp_keepalive_set: bool,
    pub(crate) reconnect_min_delay: Duration,
    pub(crate) reconnect_max_delay: Duration,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) tls_client: Option<(PathBuf, PathBuf)>,
    pub(crate) password_file: Option<PathBuf>,
    pub(crate) credentials: Option<CredentialsProvider>,
    /// Replicas that must hold an add or a run's end before it is acknowledged; 0 waits
    /// for none.
    pub(crate) wait_replicas: usize,
    pub(crate) wait_timeout: Duration,
}

/// How long an acknowledgement waits for replicas unless told otherwise.
pub(crate) const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(1);

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_mins(1)),
            tcp_keepalive_set: false,
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            tls_ca: None,
            tls_client: None,
            password_file: None,
            credentials: None,
            wait_replicas: 0,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
        }
    }
}

impl ConnectionOptions {
    /// How many command connections to open (default 1, at least 1); commands and
    /// scripts are spread over them in turn. Blocking reads and subscriptions always
    /// have connections of their own.
    pub fn pool_size(mut self, connections: usize) -> Self {
        self.pool_size = connections.max(1);
        self
    }

    /// How long opening one connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command or script may take before its caller gets an error
    /// (default 10 s). Blocking reads have no response timeout.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// TCP keepalive probes after this much idle time (default 60 s; `None` turns them
    /// off), so a connection through a dead peer or a dropped NAT entry is noticed.
    /// Connections to a master found through Sentinels probe after 5 s (then every
    /// second, three times) unless this is set, so that a master that dies silently is
    /// noticed in seconds.
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
        self.tcp_keepalive_set = true;
        self
    }

    /// Reconnection after a disruption backs off exponentially from `min` (default
    /// 100 ms) to at most `max` (default 5 s) between attempts.
    pub fn reconnection_delay(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min_delay = min;
        self.reconnect_max_delay = max.max(min);
        self
    }

    /// Trust this PEM certificate authority for `rediss://` instead of the system's
    /// (also `?tls_ca=PATH` in the URL).
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca = Some(path.into());
        self
    }

    /// Present this PEM client certificate and key to servers that ask for one (also
    /// `?tls_cert=PATH&tls_key=PATH` in the URL).
    pub fn tls_client_cert_files(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.tls_client = Some((certificate.into(), key.into()));
        self
    }

    /// Read the password from this file on every connection and reconnection (also
    /// `?password_file=PATH` in the URL), so a rotated secret is picked up without a
    /// restart. The user name, if any, comes from the URL. Surrounding whitespace,
    /// such as a trailing newline, is not part of the password.
    ///
    /// ```
    /// let options = docket::ConnectionOptions::default().password_file("/run/secrets/redis");
    /// # let _ = options;
    /// ```
    pub fn password_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.password_file = Some(path.into());
        self
    }

    /// Ask `provider` for the data nodes' credentials on every connection and
    /// reconnection: for secrets that rotate (a vault, a cloud token). It takes
    /// precedence over the URL's user and password and over a password file.
    ///
    /// ```
    /// use docket::{ConnectionOptions, Credentials};
    ///
    /// let options = ConnectionOptions::default().credentials_provider(|| async {
    ///     let password = std::env::var("REDIS_PASSWORD")?;
    ///     Ok(Credentials::new("worker", password))
    /// });
    /// # let _ = options;
    /// ```
    pub fn credentials_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Credentials, BoxError>> + Send + 'static,
    {
        self.credentials = Some(CredentialsProvider(Arc::new(move || {
            Box::pin(provider()) as CredentialsFuture
        })));
        self
    }

    /// Acknowledge an `add` (and record a run's end) only once `replicas` replicas hold
    /// it, waiting at most `timeout` for them (Redis `WAIT`; also
    /// `?wait_replicas=1&wait_timeout=500ms` in the URL). An acknowledged add then
    /// survives the master's sudden death and a failover to one of those replicas.
    ///
    /// Each such write costs one more round trip plus the replicas' catching up. When
    /// fewer replicas confirm in time, the producer gets [`Error::NotReplicated`]: the
    /// write stands on the master but is not known to be safe. `0` turns waiting off
    /// (the default).
    ///
    /// [`Error::NotReplicated`]: crate::Error::NotReplicated
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let options =
    ///     docket::ConnectionOptions::default().wait_for_replicas(1, Duration::from_millis(500));
    /// assert_eq!(options.get_wait_replicas(), 1);
    /// ```
    pub fn wait_for_replicas(mut self, replicas: usize, timeout: Duration) -> Self {
        self.wait_replicas = replicas;
        self.wait_timeout = timeout;
        self
    }

    /// The number of command connections.
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// Replicas an add or a run's end waits for (0: none).
    pub fn get_wait_replicas(&self) -> usize {
        self.wait_replicas
    }
}

/// A boxed error a credentials provider may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

type CredentialsFuture = Pin<Box<dyn Future<Output = Result<Credentials, BoxError>> + Send>>;

/// A user name (optional) and a password for the data nodes, as a
/// [credentials provider](ConnectionOptions::credentials_provider) gives them.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) username: Option<String>,
    pub(crate) password: String,
}

impl Credentials {
    /// An ACL user and its password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: Some(username.into()),
            password: password.into(),
        }
    }

    /// A password for the default user (`requirepass`).
    pub fn password(password: impl Into<String>) -> Self {
        Self {
            username: None,
            password: password.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// The provider given to [`ConnectionOptions::credentials_provider`].
#[derive(Clone)]
pub(crate) struct CredentialsProvider(Arc<dyn Fn() -> CredentialsFuture + Send + Sync>);

impl CredentialsProvider {
    /// Asks the provider for the current credentials.
    pub(crate) async fn get(&self) -> Result<Credentials, BoxError> {
        (self.0)().await
    }
}

impl fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialsProvider")
    }
}

/// Two options are equal when they hold the same provider.
impl PartialEq for CredentialsProvider {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for CredentialsProvider {}
