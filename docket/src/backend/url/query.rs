//! docket's connection options in a URL's query string, so that a deployment configured
//! only by `DOCKET_URL` can tune its connections.

use std::path::PathBuf;
use std::time::Duration;

use docket_grammar::duration::{self, Forms};

use super::percent_decode;
use crate::backend::ConnectionOptions;

/// docket's options, as the query names them.
const OPTIONS: [&str; 15] = [
    "max_connections",
    "connect_timeout",
    "response_timeout",
    "tcp_keepalive",
    "reconnect_min_delay",
    "reconnect_max_delay",
    "password_file",
    "wait_replicas",
    "wait_timeout",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "protocol",
    "sentinel_username",
    "sentinel_password",
];

/// What redis-py calls some of these options, for a URL brought over from Python.
const PYTHON_NAMES: [(&str, &str); 4] = [
    ("socket_timeout", "response_timeout"),
    ("socket_connect_timeout", "connect_timeout"),
    ("socket_keepalive", "tcp_keepalive"),
    ("health_check_interval", "tcp_keepalive"),
];

/// PEM files for TLS: the authority to trust instead of the system's, and a client
/// certificate with its key for servers that ask for one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// `tcp_keepalive`: off, or probes after this much idle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keepalive {
    Off,
    After(Duration),
}

/// docket's options as the query gives them; each one given overrides the same
/// [`ConnectionOptions`] setting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct UrlOptions {
    pub max_connections: Option<usize>,
    pub connect_timeout: Option<Duration>,
    pub response_timeout: Option<Duration>,
    pub tcp_keepalive: Option<Keepalive>,
    pub reconnect_min_delay: Option<Duration>,
    pub reconnect_max_delay: Option<Duration>,
    pub password_file: Option<PathBuf>,
    pub wait_replicas: Option<usize>,
    pub wait_timeout: Option<Duration>,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    pub tls: TlsFiles,
}

impl UrlOptions {
    /// Takes `name=value` when the option is docket's; `Ok(false)` leaves it to the
    /// caller. The error names the option and its value (never a password's).
    pub(crate) fn take(&mut self, name: &str, raw: &str) -> Result<bool, String> {
        let value = percent_decode(raw);
        let shown = if name.contains("password") {
            format!("`{name}`")
        } else {
            format!("`{name}={raw}`")
        };
        let known = OPTIONS.contains(&name) && name != "protocol";
        if known && value.is_empty() {
            return Err(format!("`{name}` needs a value"));
        }
        let bad = |reason: String| format!("{shown}: {reason}");
        let twice = || format!("`{name}` is given twice");
        macro_rules! set {
            ($slot:expr, $value:expr) => {{
                if $slot.is_some() {
                    return Err(twice());
                }
                $slot = Some($value);
            }};
        }
        match name {
            "max_connections" => set!(self.max_connections, count(&value).map_err(bad)?),
            "wait_replicas" => set!(self.wait_replicas, count(&value).map_err(bad)?),
            "connect_timeout" => set!(self.connect_timeout, time(&value).map_err(bad)?),
            "response_timeout" => set!(self.response_timeout, time(&value).map_err(bad)?),
            "wait_timeout" => set!(self.wait_timeout, time(&value).map_err(bad)?),
            "reconnect_min_delay" => set!(self.reconnect_min_delay, time(&value).map_err(bad)?),
            "reconnect_max_delay" => set!(self.reconnect_max_delay, time(&value).map_err(bad)?),
            "tcp_keepalive" => {
                let idle = match value.as_str() {
                    "off" | "false" | "no" | "0" => Keepalive::Off,
                    _ => Keepalive::After(time(&value).map_err(bad)?),
                };
                set!(self.tcp_keepalive, idle);
            }
            "password_file" => set!(self.password_file, PathBuf::from(value)),
            "sentinel_username" => set!(self.sentinel_username, value),
            "sentinel_password" => set!(self.sentinel_password, value),
            "tls_ca" => set!(self.tls.ca, PathBuf::from(value)),
            "tls_cert" => set!(self.tls.cert, PathBuf::from(value)),
            "tls_key" => set!(self.tls.key, PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks the options against each other and the kind of URL.
    pub(crate) fn check(&self, tls: bool, sentinel: bool) -> Result<(), String> {
        if !tls && self.tls != TlsFiles::default() {
            return Err(
                "`tls_ca`, `tls_cert` and `tls_key` need a TLS URL (`rediss://`, \
                        `rediss+cluster://` or `rediss+sentinel://`)"
                    .into(),
            );
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err("`tls_cert` and `tls_key` go together: give both or neither".into());
        }
        if !sentinel {
            for (name, given) in [
                ("sentinel_username", self.sentinel_username.is_some()),
                ("sentinel_password", self.sentinel_password.is_some()),
            ] {
                if given {
                    return Err(format!(
                        "`{name}` is for the Sentinels of a `redis+sentinel://` URL"
                    ));
                }
            }
        }
        if self.max_connections == Some(0) {
            return Err("`max_connections=0`: it must be at least 1".into());
        }
        for (name, value) in [
            ("connect_timeout", self.connect_timeout),
            ("response_timeout", self.response_timeout),
            ("wait_timeout", self.wait_timeout),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(format!("`{name}=0`: it must be more than zero"));
            }
        }
        if self.wait_timeout.is_some() && self.wait_replicas.is_none() {
            return Err(
                "`wait_timeout` needs `wait_replicas`: how many replicas to wait for".into(),
            );
        }
        if let (Some(min), Some(max)) = (self.reconnect_min_delay, self.reconnect_max_delay)
            && max < min
        {
            return Err(format!(
                "`reconnect_max_delay` ({max:?}) is shorter than `reconnect_min_delay` ({min:?})"
            ));
        }
        Ok(())
    }

    /// `options` with every setting the query gave replaced.
    pub(crate) fn apply(&self, options: &ConnectionOptions) -> ConnectionOptions {
        let mut options = options.clone();
        if let Some(connections) = self.max_connections {
            options.pool_size = connections;
        }
        if let Some(timeout) = self.connect_timeout {
            options.connect_timeout = timeout;
        }
        if let Some(timeout) = self.response_timeout {
            options.response_timeout = timeout;
        }
        if let Some(keepalive) = self.tcp_keepalive {
            options.tcp_keepalive = match keepalive {
                Keepalive::Off => None,
                Keepalive::After(idle) => Some(idle),
            };
            options.tcp_keepalive_set = true;
        }
        if let Some(delay) = self.reconnect_min_delay {
            options.reconnect_min_delay = delay;
        }
        if let Some(delay) = self.reconnect_max_delay {
            options.reconnect_max_delay = delay;
        }
        options.reconnect_max_delay = options.reconnect_max_delay.max(options.reconnect_min_delay);
        if let Some(path) = &self.password_file {
            options.password_file = Some(path.clone());
        }
        if let Some(replicas) = self.wait_replicas {
            options.wait_replicas = replicas;
            options.wait_timeout = self
                .wait_timeout
                .unwrap_or(super::super::options::DEFAULT_WAIT_TIMEOUT);
        }
        if let Some(ca) = &self.tls.ca {
            options.tls_ca = Some(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls.cert, &self.tls.key) {
            options.tls_client = Some((cert.clone(), key.clone()));
        }
        options
    }
}

/// Why `name` is not an option, with the ones that are.
pub(crate) fn unknown(name: &str, sentinel: bool) -> String {
    let hint = PYTHON_NAMES
        .iter()
        .find(|(python, _)| *python == name)
        .map(|(_, ours)| format!(" (redis-py's `{name}`; docket's nearest is `{ours}`)"))
        .unwrap_or_default();
    let names: Vec<&str> = OPTIONS
        .into_iter()
        .filter(|option| sentinel || !option.starts_with("sentinel_"))
        .collect();
    format!(
        "unknown option `{name}` in the query{hint}; docket takes {}",
        names.join(", ")
    )
}

fn count(value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| "expected a whole number".to_owned())
}

fn time(value: &str) -> Result<Duration, String> {
    duration::parse(value, Forms::All).map_err(|error| error.to_string())
}
