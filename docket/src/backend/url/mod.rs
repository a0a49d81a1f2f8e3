//! Parsing the URLs that name a backend, and hiding their secrets.
//!
//! A Redis URL says where the data lives ([`Topology`]: one server, a cluster, or a
//! master found through Sentinels) and may carry docket's connection options in its
//! query ([`query`]). Every option in the query is either docket's or one redis-rs
//! reads; anything else is an error that names it.

mod query;
mod sentinel;

pub(crate) use self::query::UrlOptions;
pub(crate) use self::sentinel::SentinelTarget;

use crate::error::{Error, Result};

/// Query options whose values are secrets, hidden like a URL's password.
const SECRET_OPTIONS: [&str; 2] = ["sentinel_password", "pass"];

/// Hides the passwords of a URL (its user information's and any secret query option's)
/// for logs, errors and debug output.
pub(crate) fn redact(url: &str) -> String {
    let hidden = match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    let Some((base, query)) = hidden.split_once('?') else {
        return hidden;
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_OPTIONS.contains(&name) => format!("{name}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// A parsed docket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendUrl {
    /// `memory://NAME`: the in-process store shared by every handle on the same URL.
    Memory { store: String },
    /// A server speaking the Redis protocol.
    Redis(Box<RedisUrl>),
}

/// A Redis or Valkey URL: where the data lives, and docket's options from its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedisUrl {
    pub topology: Topology,
    /// Encrypted connections (`rediss`, `valkeys` and their `+cluster`/`+sentinel` forms).
    pub tls: bool,
    /// docket's options from the query.
    pub options: UrlOptions,
}

/// Where a docket's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Topology {
    /// One server, as redis-rs opens it: `redis://`, `rediss://` or `unix://`, with
    /// `valkey` schemes rewritten and docket's own options removed from the query.
    Server(String),
    /// A cluster, through any of its nodes (the URL names one, as redis-rs opens it).
    Cluster(String),
    /// The master of a group that Sentinels monitor, wherever it is now.
    Sentinel(SentinelTarget),
}

impl RedisUrl {
    /// Whether connections are encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }
}

const FORMS: &str = "expected `memory://NAME`, `redis://host:port/db`, `rediss://...`, \
                     `redis+cluster://host:port`, `redis+sentinel://host:26379,.../MASTER/DB`, \
                     `unix://path` or `valkey://...`";

/// The kinds of Redis URL, by scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Server,
    Unix,
    Cluster,
    Sentinel,
}

impl BackendUrl {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(FORMS));
        };
        let (kind, tls) = match scheme.to_ascii_lowercase().as_str() {
            "memory" => {
                return Ok(Self::Memory {
                    store: rest.trim_end_matches('/').to_owned(),
                });
            }
            "redis" | "valkey" => (Kind::Server, false),
            "rediss" | "valkeys" => (Kind::Server, true),
            "unix" | "redis+unix" => (Kind::Unix, false),
            "redis+cluster" | "valkey+cluster" => (Kind::Cluster, false),
            "rediss+cluster" | "valkeys+cluster" => (Kind::Cluster, true),
            "redis+sentinel" | "valkey+sentinel" => (Kind::Sentinel, false),
            "rediss+sentinel" | "valkeys+sentinel" => (Kind::Sentinel, true),
            other => {
                return Err(invalid(&format!(
                    "unknown scheme `{other}`; use memory, redis, rediss, redis+cluster, \
                     rediss+cluster, redis+sentinel, rediss+sentinel, unix, valkey or valkeys \
                     (valkey also with +cluster or +sentinel)"
                )));
            }
        };
        let (base, query, fragment) = split_query(rest);
        let mut options = UrlOptions::default();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if options
                .take(name, value)
                .map_err(|reason| invalid(&reason))?
            {
                continue;
            }
            if passed_to_redis_rs(kind, name) {
                kept.push(pair);
            } else {
                return Err(invalid(&query::unknown(name, kind == Kind::Sentinel)));
            }
        }
        options
            .check(tls, kind == Kind::Sentinel)
            .map_err(|reason| invalid(&reason))?;
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.insert(0, '?');
        }
        let fragment = fragment
            .map(|fragment| format!("#{fragment}"))
            .unwrap_or_default();
        let scheme = if tls { "rediss" } else { "redis" };
        let topology = match kind {
            Kind::Server => Topology::Server(format!("{scheme}://{base}{query}{fragment}")),
            Kind::Unix => Topology::Server(format!("unix://{base}{query}{fragment}")),
            Kind::Cluster => Topology::Cluster(format!("{scheme}://{base}{query}{fragment}")),
            Kind::Sentinel => Topology::Sentinel(
                SentinelTarget::parse(base, tls, &query, &fragment)
                    .map_err(|reason| invalid(&reason))?,
            ),
        };
        Ok(Self::Redis(Box::new(RedisUrl {
            topology,
            tls,
            options,
        })))
    }
}

/// Splits `host/path?query#fragment` into its base, query and fragment.
fn split_query(rest: &str) -> (&str, &str, Option<&str>) {
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    match rest.split_once('?') {
        Some((base, query)) => (base, query, fragment),
        None => (rest, "", fragment),
    }
}

/// Query options redis-rs reads itself: the protocol, and for a socket path the
/// database and credentials (which have no other place in a `unix://` URL).
fn passed_to_redis_rs(kind: Kind, name: &str) -> bool {
    name == "protocol" || (kind == Kind::Unix && matches!(name, "db" | "user" | "pass"))
}

/// Decodes `%XX` escapes (paths and passwords in a query may escape `&`, `#` or spaces).
pub(crate) fn percent_decode(text: &str) -> String {
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
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn redis(url: &str) -> RedisUrl {
        match BackendUrl::parse(url).unwrap() {
            BackendUrl::Redis(redis) => *redis,
            BackendUrl::Memory { .. } => panic!("{url} parsed as memory"),
        }
    }

    fn server(url: &str) -> String {
        match redis(url).topology {
            Topology::Server(url) => url,
            other => panic!("{url} parsed as {other:?}"),
        }
    }

    fn refused(url: &str) -> String {
        BackendUrl::parse(url).unwrap_err().to_string()
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
            server("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
        assert_eq!(server("valkey://cache:6379/1"), "redis://cache:6379/1");
        assert_eq!(server("valkeys://cache:6379/1"), "rediss://cache:6379/1");
        assert!(redis("rediss://cache:6380/0").is_tls());
        assert!(matches!(
            redis("redis://cache/0").topology,
            Topology::Server(_)
        ));
        assert_eq!(
            server("unix:///run/redis.sock?db=2&pass=x"),
            "unix:///run/redis.sock?db=2&pass=x"
        );
    }

    #[test]
    fn cluster_urls_name_any_node() {
        let url = redis("redis+cluster://user:pw@node-1:7000/0");
        assert_eq!(
            url.topology,
            Topology::Cluster("redis://user:pw@node-1:7000/0".into())
        );
        let url = redis("rediss+cluster://node-1:7000");
        assert!(matches!(url.topology, Topology::Cluster(_)) && url.is_tls());
        assert!(matches!(
            redis("valkey+cluster://node-1:7000").topology,
            Topology::Cluster(_)
        ));
    }

    #[test]
    fn sentinel_urls_list_the_sentinels_and_name_the_master() {
        for scheme in ["redis+sentinel", "valkey+sentinel", "rediss+sentinel"] {
            let url = redis(&format!(
                "{scheme}://u:p@s1:26380,s2/mymaster/3?sentinel_password=sp&max_connections=2"
            ));
            assert_eq!(url.is_tls(), scheme.starts_with("rediss"));
            let Topology::Sentinel(target) = &url.topology else {
                panic!("{scheme} is not a sentinel URL: {url:?}");
            };
            assert_eq!(
                target.sentinels,
                vec![("s1".to_owned(), 26380), ("s2".to_owned(), 26379)]
            );
            assert_eq!(target.master, "mymaster");
            assert_eq!(url.options.sentinel_password.as_deref(), Some("sp"));
            assert_eq!(url.options.max_connections, Some(2));
        }
    }

    #[test]
    fn docket_options_are_taken_from_the_query_and_the_rest_kept_for_redis_rs() {
        let url = redis(
            "rediss://cache:6380/0?tls_ca=/etc/ca.pem&protocol=resp3&tls_cert=/c%20d.pem\
             &tls_key=/k.pem&connect_timeout=2s&response_timeout=1.5&tcp_keepalive=off\
             &reconnect_min_delay=50ms&reconnect_max_delay=2s&password_file=/run/pw\
             &wait_replicas=1&wait_timeout=250ms#insecure",
        );
        assert_eq!(
            url.topology,
            Topology::Server("rediss://cache:6380/0?protocol=resp3#insecure".into())
        );
        let options = &url.options;
        assert_eq!(options.tls.ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(options.tls.cert, Some(PathBuf::from("/c d.pem")));
        assert_eq!(options.tls.key, Some(PathBuf::from("/k.pem")));
        assert_eq!(options.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(options.response_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(options.tcp_keepalive, Some(query::Keepalive::Off));
        assert_eq!(options.reconnect_min_delay, Some(Duration::from_millis(50)));
        assert_eq!(options.reconnect_max_delay, Some(Duration::from_secs(2)));
        assert_eq!(options.password_file, Some(PathBuf::from("/run/pw")));
        assert_eq!(options.wait_replicas, Some(1));
        assert_eq!(options.wait_timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn passwords_are_hidden_in_the_url_and_in_its_query() {
        assert_eq!(
            redact("redis+sentinel://u:secret@s1/m/0?sentinel_password=s2&max_connections=2"),
            "redis+sentinel://u:***@s1/m/0?sentinel_password=***&max_connections=2"
        );
        assert_eq!(redact("unix:///s.sock?pass=x"), "unix:///s.sock?pass=***");
        assert_eq!(redact("redis://h/0"), "redis://h/0");
    }

    #[test]
    fn bad_urls_name_the_url_and_the_problem() {
        let error = refused("postgres://db");
        assert!(error.contains("`postgres://db`"), "{error}");
        assert!(error.contains("unknown scheme `postgres`"), "{error}");
        let error = refused("localhost:6379");
        assert!(error.contains("`localhost:6379`"), "{error}");
        let error = refused("redis://:secret@h/0?tls_ca=/ca.pem");
        assert!(error.contains("need a TLS URL"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(refused("rediss://h/0?tls_cert=/c.pem").contains("go together"));
        assert!(refused("rediss://h/0?tls_ca=").contains("`tls_ca` needs a value"));
    }

    #[test]
    fn an_unknown_option_is_named() {
        let error = refused("redis://h/0?max_conections=5");
        assert!(error.contains("unknown option `max_conections`"), "{error}");
        assert!(error.contains("max_connections"), "{error}");
        let error = refused("redis://h/0?socket_timeout=5");
        assert!(error.contains("`response_timeout`"), "{error}");
        // Options of one kind of URL are refused on another.
        let error = refused("redis://h/0?sentinel_password=x");
        assert!(error.contains("`sentinel_password`"), "{error}");
        assert!(error.contains("redis+sentinel"), "{error}");
        assert!(!error.contains("=x"), "{error}");
        assert!(refused("redis://h/0?db=1").contains("unknown option `db`"));
    }

    #[test]
    fn bad_option_values_name_the_option_and_the_value() {
        let error = refused("redis://h/0?max_connections=many");
        assert!(error.contains("`max_connections=many`"), "{error}");
        let error = refused("redis://h/0?connect_timeout=5x");
        assert!(error.contains("`connect_timeout=5x`"), "{error}");
        assert!(error.contains("`x` is not a unit"), "{error}");
        assert!(refused("redis://h/0?max_connections=0").contains("at least 1"));
        assert!(refused("redis://h/0?response_timeout=0").contains("more than zero"));
        assert!(refused("redis://h/0?wait_timeout=1s").contains("wait_replicas"));
        let error = refused("redis://h/0?reconnect_min_delay=5s&reconnect_max_delay=1s");
        assert!(error.contains("reconnect_max_delay"), "{error}");
        let error = refused("redis://h/0?max_connections=2&max_connections=3");
        assert!(
            error.contains("`max_connections` is given twice"),
            "{error}"
        );
    }

    #[test]
    fn bad_sentinel_urls_say_what_is_missing() {
        let error = refused("redis+sentinel://s1:26379");
        assert!(error.contains("name the master"), "{error}");
        let error = refused("redis+sentinel://s1:26379/m/x");
        assert!(error.contains("`x`"), "{error}");
        let error = refused("redis+sentinel://s1:port/m/0");
        assert!(error.contains("`s1:port`"), "{error}");
        let error = refused("redis+sentinel:///m/0");
        assert!(error.contains("at least one Sentinel"), "{error}");
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    /// URLs close enough to real ones to reach every branch: a scheme, credentials,
    /// hosts, a path and a query of known and unknown options, each part arbitrary.
    fn url_like() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec![
            "redis",
            "rediss",
            "valkey",
            "valkeys",
            "redis+cluster",
            "rediss+cluster",
            "redis+sentinel",
            "valkey+sentinel",
            "unix",
            "memory",
            "http",
            "",
        ]);
        let option = prop::sample::select(vec![
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
            "protocol",
            "sentinel_password",
            "db",
            "bogus",
            "",
        ]);
        (
            scheme,
            ".{0,12}",
            ".{0,24}",
            ".{0,12}",
            prop::collection::vec((option, ".{0,8}"), 0..4),
        )
            .prop_map(|(scheme, auth, hosts, path, query)| {
                let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{scheme}://{auth}@{hosts}/{path}?{}", query.join("&"))
            })
    }

    proptest! {
        #[test]
        fn no_url_panics_and_every_error_names_it(url in prop_oneof![url_like(), ".*"]) {
            if let Err(error) = BackendUrl::parse(&url) {
                let text = error.to_string();
                prop_assert!(text.contains(&redact(&url)), "{text} does not name {url}");
            }
        }
    }
}
