//! How a docket connects to Redis: pool size, timeouts, keepalive, reconnection, TLS.

use std::path::PathBuf;
use std::time::Duration;

/// Connection settings for a Redis-backed docket ([`DocketBuilder::connections`]);
/// `memory://` ignores them.
///
/// docket's connections are multiplexed: one connection carries any number of
/// concurrent commands, so the defaults suit most workers. Raise [`pool_size`] for a
/// process that issues very many commands at once (the guide's `max_connections`).
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
    pub(crate) reconnect_min_delay: Duration,
    pub(crate) reconnect_max_delay: Duration,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) tls_client: Option<(PathBuf, PathBuf)>,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_mins(1)),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            tls_ca: None,
            tls_client: None,
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
    pub fn tcp_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.tcp_keepalive = idle;
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

    /// The number of command connections.
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }
}
