//! Parsing the URLs that name a backend (SPEC §3).

use crate::error::{Error, Result};

/// A parsed docket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendUrl {
    /// `memory://NAME`: the in-process store shared by every handle on the same URL.
    Memory { store: String },
    /// A Redis-protocol URL, normalised for redis-rs (`valkey://` → `redis://`, ...).
    Redis(String),
}

impl BackendUrl {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(
                "expected `memory://NAME`, `redis://host:port/db`, `rediss://...`, `unix://path` or `valkey://...`",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory {
                store: rest.trim_end_matches('/').to_owned(),
            }),
            "redis" | "rediss" | "unix" | "redis+unix" => Ok(Self::Redis(url.to_owned())),
            "valkey" => Ok(Self::Redis(format!("redis://{rest}"))),
            "valkeys" => Ok(Self::Redis(format!("rediss://{rest}"))),
            "redis+cluster" | "rediss+cluster" => Err(invalid(
                "Redis Cluster URLs are not supported yet by this version of docket",
            )),
            other => Err(invalid(&format!(
                "unknown scheme `{other}`; use memory, redis, rediss, unix, valkey or valkeys"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_and_redis_urls_parse() {
        assert_eq!(
            BackendUrl::parse("memory://tests").unwrap(),
            BackendUrl::Memory {
                store: "tests".into()
            }
        );
        assert_eq!(
            BackendUrl::parse("redis://localhost:6379/0").unwrap(),
            BackendUrl::Redis("redis://localhost:6379/0".into())
        );
        assert_eq!(
            BackendUrl::parse("valkey://cache:6379/1").unwrap(),
            BackendUrl::Redis("redis://cache:6379/1".into())
        );
    }

    #[test]
    fn bad_urls_name_the_url() {
        let error = BackendUrl::parse("postgres://db").unwrap_err().to_string();
        assert!(error.contains("`postgres://db`"), "{error}");
        assert!(error.contains("unknown scheme `postgres`"), "{error}");
        let error = BackendUrl::parse("localhost:6379").unwrap_err().to_string();
        assert!(error.contains("`localhost:6379`"), "{error}");
    }
}
