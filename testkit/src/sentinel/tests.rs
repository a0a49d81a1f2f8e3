use std::collections::HashMap;
use std::time::Duration;

use super::SentinelBed;
use super::ask::pairs;
use crate::server::RedisServer;
use crate::{eventually, signal};

fn set(server: &RedisServer, key: &str, value: &str) -> redis::RedisResult<()> {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .exec(&mut server.connection())
}

fn get(server: &RedisServer, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.connection())
        .unwrap()
}

/// `SENTINEL MASTER name` as the Sentinel at `address` answers it.
fn sentinel_view(bed: &SentinelBed, address: &str) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd("SENTINEL")
        .arg("MASTER")
        .arg(bed.master_name())
        .query(&mut bed.connection(address))
        .unwrap();
    pairs(flat)
}

/// Waits until a write on `master` can be read on `replica`.
async fn replicated(master: &RedisServer, replica: &RedisServer, key: &str) {
    set(master, key, "written").unwrap();
    eventually(
        Duration::from_secs(10),
        &format!(
            "`{key}` written on {} to reach {}",
            master.address(),
            replica.address()
        ),
        || get(replica, key).as_deref() == Some("written"),
    )
    .await;
}

#[tokio::test]
async fn a_started_bed_is_a_replicated_master_that_every_sentinel_sees_whole() {
    let bed = SentinelBed::start().await;
    let master = &bed.nodes()[0];
    assert_eq!(bed.master().await, master.address());
    assert_eq!(master.info("replication")["role"], "master");
    for replica in &bed.nodes()[1..] {
        let replication = replica.info("replication");
        assert_eq!(replication["role"], "slave");
        assert_eq!(replication["master_port"], master.port().to_string());
        replicated(master, replica, "started").await;
    }
    for sentinel in bed.sentinel_addresses() {
        let view = sentinel_view(&bed, &sentinel);
        assert_eq!(view["port"], master.port().to_string(), "{sentinel}");
        assert_eq!(view["num-slaves"], "2", "{sentinel}");
        assert_eq!(view["num-other-sentinels"], "2", "{sentinel}");
        assert_eq!(view["quorum"], "2", "{sentinel}");
    }
    let sentinels = bed.sentinel_addresses();
    assert_eq!(sentinels.len(), 3);
    assert_eq!(
        bed.url(),
        format!("redis+sentinel://{}/mymaster/0", sentinels.join(","))
    );
    assert_eq!(
        bed.url_with_db(3),
        format!("redis+sentinel://{}/mymaster/3", sentinels.join(","))
    );
}

#[tokio::test]
async fn a_failover_moves_the_master_and_the_demoted_one_replicates_it() {
    let bed = SentinelBed::start().await;
    let first = bed.nodes()[0].address();
    let failover = bed.demote_master().await;
    assert_eq!(failover.old, first);
    assert_ne!(failover.new, first);
    assert_eq!(bed.master().await, failover.new);
    for sentinel in bed.sentinel_addresses() {
        let view = sentinel_view(&bed, &sentinel);
        assert_eq!(
            format!("{}:{}", view["ip"], view["port"]),
            failover.new,
            "{sentinel}"
        );
    }
    let (old, new) = (bed.node(&failover.old), bed.node(&failover.new));
    assert!(old.pid().is_some(), "the old master keeps running");
    assert_eq!(new.info("replication")["role"], "master");
    let replication = old.info("replication");
    assert_eq!(replication["role"], "slave");
    assert_eq!(replication["master_port"], new.port().to_string());
    let refused = set(old, "demoted", "no").unwrap_err();
    assert_eq!(refused.code(), Some("READONLY"), "{refused}");
    replicated(new, old, "failed-over").await;
}

#[tokio::test]
async fn a_killed_master_is_replaced_by_a_replica_the_other_follows() {
    let mut bed = SentinelBed::start().await;
    let first = bed.nodes()[0].address();
    let failover = bed.kill_master().await;
    assert_eq!(failover.old, first);
    assert_eq!(bed.node(&first).pid(), None);
    let replicas: Vec<String> = bed.nodes()[1..].iter().map(RedisServer::address).collect();
    assert!(replicas.contains(&failover.new), "{failover}");
    assert_eq!(bed.master().await, failover.new);
    let other = replicas
        .iter()
        .find(|replica| **replica != failover.new)
        .unwrap();
    bed.wait_for_replica(other).await;
    replicated(bed.node(&failover.new), bed.node(other), "after-the-kill").await;
}

#[tokio::test]
async fn dropping_the_bed_kills_every_process_it_started() {
    let bed = SentinelBed::builder()
        .master_name("short-lived")
        .replicas(1)
        .sentinels(2)
        .quorum(1)
        .start()
        .await;
    assert!(bed.url().ends_with("/short-lived/0"), "{}", bed.url());
    let servers: Vec<&RedisServer> = bed.nodes().iter().chain(bed.sentinels()).collect();
    assert_eq!(servers.len(), 4);
    let pids: Vec<u32> = servers.iter().map(|server| server.pid().unwrap()).collect();
    let dirs: Vec<_> = servers
        .iter()
        .map(|server| server.dir().to_owned())
        .collect();
    for &pid in &pids {
        signal(pid, "0").unwrap_or_else(|error| panic!("{pid} runs: {error}"));
    }
    drop(bed);
    for pid in pids {
        assert!(signal(pid, "0").is_err(), "{pid} still runs");
    }
    for dir in dirs {
        assert!(!dir.exists(), "{} is left behind", dir.display());
    }
}
