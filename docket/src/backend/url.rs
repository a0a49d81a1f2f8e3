//! Parsing the URLs that name a backend, and hiding their passwords.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// Hides the password of a URL for logs, errors and debug output.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A parsed docket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendUrl {
    /// `memory://NAME`: the in-process store shared by every handle on the same URL.
    Memory { store: String },
    /// A server speaking the Redis protocol.
    Redis(RedisUrl),
}

/// A Redis, Valkey or Redis Cluster URL, normalised for redis-rs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct RedisUrl {
    /// What redis-rs opens: `redis://`, `rediss://` or `unix://` (`valkey://` and the
    /// `+cluster` schemes rewritten, docket's own query parameters removed).
    pub url: String,
    /// `redis+cluster://` or `rediss+cluster://`: the host is any node of a cluster.
    pub cluster: bool,
    /// Certificate files named in the query (`tls_ca`, `tls_cert`, `tls_key`).
    pub tls: TlsFiles,
}

/// PEM files for TLS: the authority to trust instead of the system's, and a client
/// certificate with its key for servers that ask for one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl RedisUrl {
    /// Whether connections are encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }
}

const FORMS: &str = "expected `memory://NAME`, `redis://host:port/db`, `rediss://...`, \
                     `redis+cluster://host:port`, `rediss+cluster://...`, `unix://path` or \
                     `valkey://...`";

impl BackendUrl {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(FORMS));
        };
        let (scheme, cluster) = match scheme.to_ascii_lowercase().as_str() {
            "memory" => {
                return Ok(Self::Memory {
                    store: rest.trim_end_matches('/').to_owned(),
                });
            }
            "redis" | "valkey" => ("redis", false),
            "rediss" | "valkeys" => ("rediss", false),
            "unix" | "redis+unix" => ("unix", false),
            "redis+cluster" | "valkey+cluster" => ("redis", true),
            "rediss+cluster" | "valkeys+cluster" => ("rediss", true),
            other => {
                return Err(invalid(&format!(
                    "unknown scheme `{other}`; use memory, redis, rediss, redis+cluster, \
                     rediss+cluster, unix, valkey or valkeys"
                )));
            }
        };
        let (rest, tls) = take_tls_parameters(rest).map_err(|reason| invalid(&reason))?;
        if scheme != "rediss" && tls != TlsFiles::default() {
            return Err(invalid(
                "`tls_ca`, `tls_cert` and `tls_key` need a TLS URL (`rediss://` or \
                 `rediss+cluster://`)",
            ));
        }
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(invalid(
                "`tls_cert` and `tls_key` go together: give both or neither",
            ));
        }
        Ok(Self::Redis(RedisUrl {
            url: format!("{scheme}://{rest}"),
            cluster,
            tls,
        }))
    }
}

/// Removes docket's TLS parameters from the query, keeping the others for redis-rs.
fn take_tls_parameters(rest: &str) -> std::result::Result<(String, TlsFiles), String> {
    let Some((base, query)) = rest.split_once('?') else {
        return Ok((rest.to_owned(), TlsFiles::default()));
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let mut files = TlsFiles::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "tls_ca" => &mut files.ca,
            "tls_cert" => &mut files.cert,
            "tls_key" => &mut files.key,
            _ => {
                kept.push(pair);
                continue;
            }
        };
        if value.is_empty() {
            return Err(format!("`{name}` needs a file path"));
        }
        *slot = Some(PathBuf::from(percent_decode(value)));
    }
    let mut url = base.to_owned();
    if !kept.is_empty() {
        url.push('?');
        url.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment {
        url.push('#');
        url.push_str(fragment);
    }
    Ok((url, files))
}

/// Decodes `%XX` escapes (paths in a query may escape `&`, `#` or spaces).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str) -> RedisUrl {
        match BackendUrl::parse(url).unwrap() {
            BackendUrl::Redis(redis) => redis,
            BackendUrl::Memory { .. } => panic!("{url} parsed as memory"),
        }
    }

    #[test]
    fn memory_and_redis_urls_parse() {
        assert_eq!(
            BackendUrl::parse("memory://tests").unwrap(),
            BackendUrl::Memory {
                store: "tests".into()
            }
        );
        assert_eq!(
            redis("redis://localhost:6379/0").url,
            "redis://localhost:6379/0"
        );
        assert_eq!(redis("valkey://cache:6379/1").url, "redis://cache:6379/1");
        assert_eq!(redis("valkeys://cache:6379/1").url, "rediss://cache:6379/1");
        assert!(redis("rediss://cache:6380/0").is_tls());
        assert!(!redis("redis://cache/0").cluster);
    }

    #[test]
    fn cluster_urls_name_any_node() {
        let url = redis("redis+cluster://user:pw@node-1:7000/0");
        assert!(url.cluster);
        assert_eq!(url.url, "redis://user:pw@node-1:7000/0");
        let url = redis("rediss+cluster://node-1:7000");
        assert!(url.cluster && url.is_tls());
        assert!(redis("valkey+cluster://node-1:7000").cluster);
    }

    #[test]
    fn tls_files_come_from_the_query_and_are_removed_from_it() {
        let url = redis(
            "rediss://cache:6380/0?tls_ca=/etc/ca.pem&protocol=resp3&tls_cert=/c%20d.pem&tls_key=/k.pem#insecure",
        );
        assert_eq!(url.url, "rediss://cache:6380/0?protocol=resp3#insecure");
        assert_eq!(url.tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(url.tls.cert, Some(PathBuf::from("/c d.pem")));
        assert_eq!(url.tls.key, Some(PathBuf::from("/k.pem")));
    }

    #[test]
    fn bad_urls_name_the_url_and_the_problem() {
        let error = BackendUrl::parse("postgres://db").unwrap_err().to_string();
        assert!(error.contains("`postgres://db`"), "{error}");
        assert!(error.contains("unknown scheme `postgres`"), "{error}");
        let error = BackendUrl::parse("localhost:6379").unwrap_err().to_string();
        assert!(error.contains("`localhost:6379`"), "{error}");
        let error = BackendUrl::parse("redis://:secret@h/0?tls_ca=/ca.pem")
            .unwrap_err()
            .to_string();
        assert!(error.contains("need a TLS URL"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let error = BackendUrl::parse("rediss://h/0?tls_cert=/c.pem")
            .unwrap_err()
            .to_string();
        assert!(error.contains("go together"), "{error}");
        let error = BackendUrl::parse("rediss://h/0?tls_ca=")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`tls_ca` needs a file path"), "{error}");
    }
}
