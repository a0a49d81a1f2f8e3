//! A Redis Cluster of six `redis-server` processes (three primaries, three replicas),
//! made with `redis-cli --cluster create`, in the clear or over TLS only, and the
//! resharding step tests need.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::Duration;

use crate::endpoint::TlsFiles;
use crate::names::free_port;
use crate::server::RedisServer;
use crate::wait::Deadline;

/// How often the cluster's state is asked for while waiting on it.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A free loopback port whose cluster bus port (+10000) is usable too.
fn free_cluster_port(taken: &mut HashSet<u16>) -> u16 {
    loop {
        let port = free_port();
        if port < 55_000
            && taken.insert(port)
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

/// Six `redis-server` processes made into a cluster; killed when dropped.
#[derive(Debug)]
pub struct Cluster {
    /// The nodes, in the order `redis-cli --cluster create` was given them.
    pub nodes: Vec<RedisServer>,
    /// Whether clients, replicas and the cluster bus all speak TLS.
    tls: bool,
}

impl Cluster {
    /// Starts six nodes, makes them a cluster with one replica per primary, and waits
    /// until every node says the cluster is ok.
    ///
    /// # Panics
    /// When a node does not start, `redis-cli` is missing or fails, or the cluster is
    /// not ok within 30 s.
    pub fn start() -> Self {
        Self::start_nodes(None)
    }

    /// [`Cluster::start`] with TLS everywhere and no plain port: each node serves
    /// clients, its replicas and the cluster bus over TLS with the certificate of
    /// `files` (`--tls-cluster yes`, `--tls-replication yes`).
    ///
    /// # Panics
    /// As [`Cluster::start`] does.
    pub fn start_with_tls(files: &TlsFiles) -> Self {
        Self::start_nodes(Some(files))
    }

    fn start_nodes(tls: Option<&TlsFiles>) -> Self {
        let mut taken = HashSet::new();
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                let node = RedisServer::builder().port(free_cluster_port(&mut taken));
                let node = match tls {
                    Some(files) => node.tls(files.clone()).args([
                        "--tls-cluster",
                        "yes",
                        "--tls-replication",
                        "yes",
                    ]),
                    None => node,
                };
                node.args([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "3000",
                    // A replica's first full copy comes at once, not after the
                    // five seconds a primary waits by default for more to ask.
                    "--repl-diskless-sync-delay",
                    "0",
                ])
                .start()
            })
            .collect();
        let mut command = Command::new("redis-cli");
        if let Some(files) = tls {
            command.arg("--tls").arg("--cacert").arg(&files.ca);
        }
        let output = command
            .arg("--cluster")
            .arg("create")
            .args(
                nodes
                    .iter()
                    .map(|node| format!("127.0.0.1:{}", node.port())),
            )
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect(
                "run `redis-cli --cluster create` (redis-cli comes with redis-server: \
                 `apt-get install -y redis-server`)",
            );
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = Self {
            nodes,
            tls: tls.is_some(),
        };
        cluster.wait_until_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` and knows all six nodes, and
    /// every replica's link to its primary is up.
    fn wait_until_ok(&self) {
        let deadline = Deadline::after(Duration::from_secs(30), "the cluster to be ok");
        for node in &self.nodes {
            let mut connection = node.connection();
            loop {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut connection)
                    .unwrap();
                let replication: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .unwrap();
                let linked = replication.contains("role:master")
                    || replication.contains("master_link_status:up");
                if info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:6")
                    && linked
                {
                    break;
                }
                deadline.check(&info);
                std::thread::sleep(POLL_EVERY);
            }
        }
    }

    /// The URL naming one node (`rediss+cluster://` over TLS, the authority to be
    /// named by the client); a cluster client finds the others.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}+cluster://127.0.0.1:{}/0", self.nodes[2].port())
    }

    /// The primaries (by `ROLE`), each with its id and port.
    fn primaries(&self) -> Vec<(String, u16)> {
        self.nodes
            .iter()
            .filter_map(|node| {
                let mut connection = node.connection();
                let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut connection).unwrap();
                let primary =
                    matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master");
                primary.then(|| {
                    let id: String = redis::cmd("CLUSTER")
                        .arg("MYID")
                        .query(&mut connection)
                        .unwrap();
                    (id, node.port())
                })
            })
            .collect()
    }

    /// The port of the primary serving `slot`, as `CLUSTER SLOTS` tells.
    fn owner(&self, slot: u16) -> u16 {
        let slots: Vec<(u16, u16, u16)> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut self.nodes[0].connection())
            .unwrap()
            .into_iter()
            .map(|range| {
                let redis::Value::Array(range) = range else {
                    panic!("{range:?}")
                };
                let number = |value: &redis::Value| match value {
                    redis::Value::Int(n) => u16::try_from(*n).unwrap(),
                    other => panic!("{other:?}"),
                };
                let redis::Value::Array(primary) = &range[2] else {
                    panic!("{range:?}")
                };
                (number(&range[0]), number(&range[1]), number(&primary[1]))
            })
            .collect();
        slots
            .into_iter()
            .find(|(from, to, _)| (*from..=*to).contains(&slot))
            .map(|(_, _, port)| port)
            .expect("the slot is served")
    }

    fn node(&self, port: u16) -> &RedisServer {
        self.nodes.iter().find(|node| node.port() == port).unwrap()
    }

    /// Moves `slot` and its keys to another primary, the way `redis-cli --cluster
    /// reshard` does: IMPORTING/MIGRATING, MIGRATE of every key, then SETSLOT NODE.
    ///
    /// # Panics
    /// When the cluster does not have three primaries within 20 s or a step fails.
    pub fn migrate_slot(&self, slot: u16) {
        let deadline = Deadline::after(Duration::from_secs(20), "three primaries");
        let primaries = loop {
            let primaries = self.primaries();
            if primaries.len() == 3 {
                break primaries;
            }
            deadline.check(&primaries);
            std::thread::sleep(POLL_EVERY);
        };
        let source_port = self.owner(slot);
        let (source_id, _) = primaries
            .iter()
            .find(|(_, port)| *port == source_port)
            .cloned()
            .unwrap();
        let (target_id, target_port) = primaries
            .iter()
            .find(|(_, port)| *port != source_port)
            .cloned()
            .unwrap();
        let mut source = self.node(source_port).connection();
        let mut target = self.node(target_port).connection();
        let set_slot = |connection: &mut redis::Connection, how: &str, id: &str| {
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(id)
                .exec(connection)
                .unwrap();
        };
        set_slot(&mut target, "IMPORTING", &source_id);
        set_slot(&mut source, "MIGRATING", &target_id);
        loop {
            let keys: Vec<String> = redis::cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(slot)
                .arg(100)
                .query(&mut source)
                .unwrap();
            if keys.is_empty() {
                break;
            }
            redis::cmd("MIGRATE")
                .arg("127.0.0.1")
                .arg(target_port)
                .arg("")
                .arg(0)
                .arg(5000)
                .arg("KEYS")
                .arg(&keys)
                .exec(&mut source)
                .unwrap();
        }
        for (_, port) in &primaries {
            set_slot(&mut self.node(*port).connection(), "NODE", &target_id);
        }
        println!("moved slot {slot} from :{source_port} to :{target_port}");
    }
}
