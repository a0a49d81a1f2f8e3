//! Questions to a data node or a Sentinel, each bounded in time, and the readings of
//! their answers that the bed waits on. An answer that is not the awaited one comes
//! back as `Err` with what was seen instead, for the wait's failure message.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue};

use crate::server::parse_info;

/// How long connecting, and then each answer, may take: a node that is paused or gone
/// costs a wait one poll, not the whole deadline.
const ANSWER_WITHIN: Duration = Duration::from_millis(500);

/// A connection of its own to the server at `address`, for a few questions.
struct Asking<'a> {
    address: &'a str,
    connection: MultiplexedConnection,
}

impl<'a> Asking<'a> {
    async fn open(address: &'a str) -> Result<Self, String> {
        let fail = |error: redis::RedisError| format!("{address}: {error}");
        let client = redis::Client::open(format!("redis://{address}")).map_err(fail)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ANSWER_WITHIN))
            .set_response_timeout(Some(ANSWER_WITHIN));
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(fail)?;
        Ok(Self {
            address,
            connection,
        })
    }

    async fn query<T: FromRedisValue>(&mut self, command: &redis::Cmd) -> Result<T, String> {
        command
            .query_async(&mut self.connection)
            .await
            .map_err(|error| format!("{}: {error}", self.address))
    }

    /// `SENTINEL {subcommand} {name}` answered with one flat list of names and values.
    async fn sentinel_map(
        &mut self,
        subcommand: &str,
        name: &str,
    ) -> Result<HashMap<String, String>, String> {
        let flat: Vec<String> = self
            .query(redis::cmd("SENTINEL").arg(subcommand).arg(name))
            .await?;
        Ok(pairs(flat))
    }

    /// `SENTINEL {subcommand} {name}` answered with a list of such lists.
    async fn sentinel_maps(
        &mut self,
        subcommand: &str,
        name: &str,
    ) -> Result<Vec<HashMap<String, String>>, String> {
        let flats: Vec<Vec<String>> = self
            .query(redis::cmd("SENTINEL").arg(subcommand).arg(name))
            .await?;
        Ok(flats.into_iter().map(pairs).collect())
    }
}

/// `[name, value, name, value, ...]` as a map.
pub(super) fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut items = flat.into_iter();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        map.insert(name, value);
    }
    map
}

/// A field of a Sentinel's description of an instance, empty when missing.
fn field<'m>(map: &'m HashMap<String, String>, name: &str) -> &'m str {
    map.get(name).map_or("", String::as_str)
}

/// `ip:port` of an instance a Sentinel describes.
fn address_of(map: &HashMap<String, String>) -> String {
    format!("{}:{}", field(map, "ip"), field(map, "port"))
}

/// Sends `command` to the server at `address` on a connection of its own.
pub(super) async fn ask<T: FromRedisValue>(
    address: &str,
    command: &redis::Cmd,
) -> Result<T, String> {
    Asking::open(address).await?.query(command).await
}

/// `INFO replication` of the data node at `address`.
async fn replication(address: &str) -> Result<HashMap<String, String>, String> {
    let text: String = ask(address, redis::cmd("INFO").arg("replication")).await?;
    Ok(parse_info(&text))
}

/// `Ok` when the data node at `address` says it is a master.
pub(super) async fn says_master(address: &str) -> Result<(), String> {
    let info = replication(address).await?;
    match field(&info, "role") {
        "master" => Ok(()),
        role => Err(format!("{address} says role:{role}")),
    }
}

/// `Ok` when the data node at `address` says it replicates `master` over a link that
/// is up.
pub(super) async fn says_replica_of(address: &str, master: &str) -> Result<(), String> {
    let info = replication(address).await?;
    let following = format!(
        "{}:{}",
        field(&info, "master_host"),
        field(&info, "master_port")
    );
    let (role, link) = (field(&info, "role"), field(&info, "master_link_status"));
    if role == "slave" && following == master && link == "up" {
        Ok(())
    } else {
        Err(format!(
            "{address} says role:{role}, master {following}, master_link_status:{link}"
        ))
    }
}

/// The master that the Sentinel at `sentinel` gives clients for `name`
/// (`SENTINEL GET-MASTER-ADDR-BY-NAME`), once it is neither failing over nor
/// considers it down.
pub(super) async fn master_named_by(sentinel: &str, name: &str) -> Result<String, String> {
    let mut asking = Asking::open(sentinel).await?;
    let named: Option<(String, String)> = asking
        .query(
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(name),
        )
        .await?;
    let Some((ip, port)) = named else {
        return Err(format!("Sentinel {sentinel} knows no master `{name}`"));
    };
    let master = asking.sentinel_map("MASTER", name).await?;
    match field(&master, "flags") {
        "master" => Ok(format!("{ip}:{port}")),
        flags => Err(format!(
            "Sentinel {sentinel} names {ip}:{port}, flagged `{flags}`"
        )),
    }
}

/// `Ok` when the Sentinel at `sentinel` monitors `master` as `name`, sees it up, links
/// to `replicas` replicas of it that are up and linked to it, and to `others` other
/// Sentinels: what it needs to agree to, and carry out, a failover at once.
pub(super) async fn sees_everything(
    sentinel: &str,
    name: &str,
    master: &str,
    replicas: usize,
    others: usize,
) -> Result<(), String> {
    let mut asking = Asking::open(sentinel).await?;
    let seen = asking.sentinel_map("MASTER", name).await?;
    let summary = format!(
        "Sentinel {sentinel} sees master {} flagged `{}`, {} replicas and {} other Sentinels",
        address_of(&seen),
        field(&seen, "flags"),
        field(&seen, "num-slaves"),
        field(&seen, "num-other-sentinels"),
    );
    if address_of(&seen) != master
        || field(&seen, "flags") != "master"
        || field(&seen, "num-slaves") != replicas.to_string()
        || field(&seen, "num-other-sentinels") != others.to_string()
    {
        return Err(summary);
    }
    let unready = |instances: Vec<HashMap<String, String>>, flags: &str| {
        instances
            .iter()
            .filter(|instance| {
                field(instance, "flags") != flags
                    || (flags == "slave" && field(instance, "master-link-status") != "ok")
            })
            .map(|instance| format!("{} `{}`", address_of(instance), field(instance, "flags")))
            .collect::<Vec<_>>()
    };
    let mut waiting = unready(asking.sentinel_maps("REPLICAS", name).await?, "slave");
    waiting.extend(unready(
        asking.sentinel_maps("SENTINELS", name).await?,
        "sentinel",
    ));
    if waiting.is_empty() {
        Ok(())
    } else {
        Err(format!("{summary}; not ready yet: {}", waiting.join(", ")))
    }
}

/// Asks the Sentinel at `sentinel` to fail `name` over (`SENTINEL FAILOVER`). A
/// failover already in progress counts as started: it may be this one, whose answer
/// was lost.
pub(super) async fn start_failover(sentinel: &str, name: &str) -> Result<(), String> {
    match ask::<()>(sentinel, redis::cmd("SENTINEL").arg("FAILOVER").arg(name)).await {
        Err(error) if !error.contains("INPROG") => Err(error),
        _ => Ok(()),
    }
}

/// Makes the data node at `address` a replica of `master` the way a Sentinel turns a
/// master that outlived its failover into one: in one transaction, `REPLICAOF` and the
/// end of every normal and Pub/Sub client connection (but this one), so that clients
/// reconnect and ask the Sentinels again.
pub(super) async fn make_replica(address: &str, master: &str) -> Result<(), String> {
    let (host, port) = master
        .rsplit_once(':')
        .ok_or_else(|| format!("`{master}` is not `host:port`"))?;
    let mut asking = Asking::open(address).await?;
    redis::pipe()
        .atomic()
        .cmd("REPLICAOF")
        .arg(host)
        .arg(port)
        .ignore()
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal"])
        .ignore()
        .cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .ignore()
        .query_async::<()>(&mut asking.connection)
        .await
        .map_err(|error| format!("{address}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_list_is_read_as_names_and_values() {
        let map = pairs(
            ["ip", "127.0.0.1", "port", "6379", "flags", "master"]
                .map(String::from)
                .to_vec(),
        );
        assert_eq!(address_of(&map), "127.0.0.1:6379");
        assert_eq!(field(&map, "flags"), "master");
        assert_eq!(field(&map, "num-slaves"), "");
    }
}
