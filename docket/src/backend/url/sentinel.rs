//! `redis+sentinel://[user:pass@]s1:26379,s2:26379/MASTER/DB`: the Sentinels to ask, the
//! master group they monitor, and how to reach the data nodes once one is found.

/// The port a Sentinel listens on unless the URL says otherwise.
const SENTINEL_PORT: u16 = 26379;

/// A master group that Sentinels monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentinelTarget {
    /// The Sentinels, in the order given: host and port.
    pub sentinels: Vec<(String, u16)>,
    /// The monitored master group's name.
    pub master: String,
    /// A data node's URL is `{node_prefix}{host:port}{node_suffix}`: the scheme and the
    /// data nodes' credentials before, the database, query and fragment after.
    node_prefix: String,
    node_suffix: String,
    /// A Sentinel's URL is `{sentinel_prefix}{host:port}{fragment}`, without credentials
    /// (the Sentinels' own come from the query).
    sentinel_prefix: String,
    fragment: String,
}

impl SentinelTarget {
    /// Reads the part of the URL after `redis+sentinel://`, its query and fragment
    /// already split off (the query holding only what redis-rs reads).
    pub(crate) fn parse(
        base: &str,
        tls: bool,
        query: &str,
        fragment: &str,
    ) -> Result<Self, String> {
        let (authority, path) = base.split_once('/').unwrap_or((base, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let sentinels = hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(sentinel_address)
            .collect::<Result<Vec<_>, _>>()?;
        if sentinels.is_empty() {
            return Err(
                "list at least one Sentinel: `redis+sentinel://host:26379/MASTER/DB`".into(),
            );
        }
        let mut segments = path.split('/').filter(|segment| !segment.is_empty());
        let Some(master) = segments.next() else {
            return Err("name the master group the Sentinels monitor: \
                 `redis+sentinel://host:26379/MASTER/DB`"
                .into());
        };
        let db = match segments.next() {
            Some(db) => db
                .parse::<u32>()
                .map_err(|_| format!("the database `{db}` is not a number"))?,
            None => 0,
        };
        if let Some(extra) = segments.next() {
            return Err(format!(
                "unexpected `/{extra}` after the master and database: \
                 `redis+sentinel://host:26379/MASTER/DB`"
            ));
        }
        let scheme = if tls { "rediss" } else { "redis" };
        let credentials = userinfo
            .map(|userinfo| format!("{userinfo}@"))
            .unwrap_or_default();
        Ok(Self {
            sentinels,
            master: super::percent_decode(master),
            node_prefix: format!("{scheme}://{credentials}"),
            node_suffix: format!("/{db}{query}{fragment}"),
            sentinel_prefix: format!("{scheme}://"),
            fragment: fragment.to_owned(),
        })
    }

    /// The URL of the data node at `host:port`, with the data nodes' credentials and
    /// database.
    pub(crate) fn node_url(&self, host: &str, port: u16) -> String {
        format!(
            "{}{}{}",
            self.node_prefix,
            address(host, port),
            self.node_suffix
        )
    }

    /// The URL of one Sentinel (without credentials).
    pub(crate) fn sentinel_url(&self, host: &str, port: u16) -> String {
        format!(
            "{}{}{}",
            self.sentinel_prefix,
            address(host, port),
            self.fragment
        )
    }
}

/// `host:port`, bracketing an IPv6 address.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn sentinel_address(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("`{text}` is not a Sentinel's `host` or `host:port`");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(port) => port.parse().map_err(|_| bad())?,
        None => SENTINEL_PORT,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_nodes_get_the_urls_credentials_database_and_options() {
        let target = SentinelTarget::parse(
            "u%40x:p@s1,[::1]:26380/my%20master/2",
            true,
            "?protocol=resp3",
            "#insecure",
        )
        .unwrap();
        assert_eq!(
            target.sentinels,
            vec![("s1".to_owned(), 26379), ("::1".to_owned(), 26380)]
        );
        assert_eq!(target.master, "my master");
        assert_eq!(
            target.node_url("10.0.0.5", 6380),
            "rediss://u%40x:p@10.0.0.5:6380/2?protocol=resp3#insecure"
        );
        assert_eq!(
            target.node_url("::2", 6379),
            "rediss://u%40x:p@[::2]:6379/2?protocol=resp3#insecure"
        );
        assert_eq!(
            target.sentinel_url("s1", 26379),
            "rediss://s1:26379#insecure"
        );
    }

    #[test]
    fn the_database_defaults_to_zero() {
        let target = SentinelTarget::parse("s1/m", false, "", "").unwrap();
        assert_eq!(target.node_url("h", 1), "redis://h:1/0");
    }
}
