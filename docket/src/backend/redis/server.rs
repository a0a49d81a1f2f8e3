//! What docket checks of a server when it connects: Redis 6.2 or later (or Valkey),
//! and `maxmemory-policy noeviction`. A user without the right to run `INFO` is warned
//! that the checks were skipped, and goes on.

use redis::aio::MultiplexedConnection;

use crate::error::{Error, Result};

/// The server's name, version and eviction policy, as `INFO` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServerInfo {
    /// `redis` or `valkey`.
    pub name: String,
    pub version: (u32, u32, u32),
    /// `None` when the server does not say.
    pub eviction: Option<String>,
}

impl ServerInfo {
    /// Reads the fields docket needs from an `INFO` reply.
    pub(super) fn parse(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        // Valkey reports `server_name:valkey` and its own version as `valkey_version`
        // (its `redis_version` stays at the Redis version it is compatible with).
        let name = field("server_name").unwrap_or("redis").to_ascii_lowercase();
        let version_text = match name.as_str() {
            "valkey" => field("valkey_version").or_else(|| field("redis_version")),
            _ => field("redis_version"),
        }?;
        let mut parts = version_text
            .split('.')
            .map(|part| part.parse::<u32>().unwrap_or(0));
        let version = (
            parts.next()?,
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        Some(Self {
            name,
            version,
            eviction: field("maxmemory_policy").map(str::to_owned),
        })
    }

    /// Whether docket can run on this server.
    pub(super) fn is_supported(&self) -> bool {
        self.name == "valkey" || self.version >= (6, 2, 0)
    }

    /// `Redis 7.0.15`, `Valkey 9.1.2`.
    pub(super) fn describe(&self) -> String {
        let (major, minor, patch) = self.version;
        let name = if self.name == "valkey" {
            "Valkey"
        } else {
            "Redis"
        };
        format!("{name} {major}.{minor}.{patch}")
    }
}

/// Checks the server behind `connection`; returns what it says it is, when it says.
///
/// # Errors
/// [`Error::UnsupportedServer`] for a server older than Redis 6.2.
pub(super) async fn check(
    connection: &mut MultiplexedConnection,
    shown: &str,
) -> Result<Option<ServerInfo>> {
    let info: redis::RedisResult<String> = redis::cmd("INFO")
        .arg("server")
        .arg("memory")
        .query_async(connection)
        .await;
    // Redis 6.2 takes one section per INFO: ask for the default sections instead.
    let info = match info {
        Err(error) if error.code() == Some("ERR") => {
            redis::cmd("INFO").query_async::<String>(connection).await
        }
        other => other,
    };
    let info = match info {
        Ok(info) => info,
        Err(error) => {
            tracing::warn!(
                url = %shown,
                "cannot check the server's version and eviction policy ({error}); going on"
            );
            return Ok(None);
        }
    };
    let Some(server) = ServerInfo::parse(&info) else {
        tracing::warn!(url = %shown, "the server's INFO names no version; going on");
        return Ok(None);
    };
    if !server.is_supported() {
        return Err(Error::UnsupportedServer {
            url: shown.to_owned(),
            server: server.describe(),
        });
    }
    match server.eviction.as_deref() {
        Some("noeviction") | None => {}
        Some(policy) => tracing::warn!(
            url = %shown,
            policy,
            "`maxmemory-policy` is `{policy}`: Redis may evict queued tasks and records under \
             memory pressure; docket needs `noeviction` to lose nothing"
        ),
    }
    tracing::debug!(url = %shown, server = %server.describe(), "connected");
    Ok(Some(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_and_valkey_versions_are_read() {
        let redis = ServerInfo::parse(
            "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Memory\r\nmaxmemory_policy:noeviction\r\n",
        )
        .unwrap();
        assert_eq!(redis.name, "redis");
        assert_eq!(redis.version, (7, 0, 15));
        assert_eq!(redis.eviction.as_deref(), Some("noeviction"));
        assert!(redis.is_supported());

        let valkey = ServerInfo::parse(
            "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n",
        )
        .unwrap();
        assert_eq!(valkey.name, "valkey");
        assert_eq!(valkey.version, (8, 0, 1));
        assert_eq!(valkey.describe(), "Valkey 8.0.1");
    }

    #[test]
    fn servers_older_than_6_2_are_refused() {
        for (version, supported) in [
            ("6.2.0", true),
            ("6.2.14", true),
            ("6.0.16", false),
            ("5.0.7", false),
        ] {
            let info = ServerInfo::parse(&format!("redis_version:{version}\r\n")).unwrap();
            assert_eq!(info.is_supported(), supported, "{version}");
        }
        assert!(ServerInfo::parse("uptime:1\r\n").is_none());
    }
}
