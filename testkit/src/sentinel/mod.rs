//! A Redis Sentinel deployment on loopback for failover tests: a master, its replicas
//! and the Sentinels that watch them, each a `redis-server` this program started and
//! kills when the bed is dropped.

mod ask;
mod failover;
mod master;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::server::RedisServer;
use crate::wait::{Deadline, try_wait_for};

pub use failover::Failover;

/// How often the bed asks the Sentinels and nodes while it waits: each poll opens a
/// connection to every Sentinel.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long the bed waits for anything: several times what starting, or a failover,
/// takes here.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);
/// What every data node runs with besides persisting nothing: a replica asking for a
/// full copy gets it at once instead of after the five seconds a master by default
/// waits for more replicas to ask.
const DATA_NODE_ARGS: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

/// How to start a [`SentinelBed`]: the server binary, the master's name, how many
/// replicas and Sentinels, the quorum and the Sentinels' timings. Made by
/// [`SentinelBed::builder`].
#[derive(Debug, Clone)]
pub struct SentinelBedBuilder {
    binary: PathBuf,
    master_name: String,
    replicas: usize,
    sentinels: usize,
    quorum: usize,
    down_after: Duration,
    failover_timeout: Duration,
}

impl SentinelBedBuilder {
    /// The server binary for the data nodes and the Sentinels (which it runs with
    /// `--sentinel`): a name on `PATH` (`redis-server`, the default) or a path, such
    /// as [`installed_server`](crate::installed_server)'s.
    #[must_use]
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// The name the Sentinels monitor the master under (`mymaster` unless told).
    #[must_use]
    pub fn master_name(mut self, name: impl Into<String>) -> Self {
        self.master_name = name.into();
        self
    }

    /// How many replicas the master has (2 unless told).
    #[must_use]
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How many Sentinels watch the master (3 unless told).
    #[must_use]
    pub fn sentinels(mut self, sentinels: usize) -> Self {
        self.sentinels = sentinels;
        self
    }

    /// How many Sentinels must find the master unreachable before one fails it over
    /// (2 unless told); the one that does must also be elected by a majority of them.
    #[must_use]
    pub fn quorum(mut self, quorum: usize) -> Self {
        self.quorum = quorum;
        self
    }

    /// How long a node must not answer before a Sentinel considers it down
    /// (`down-after-milliseconds`; 1 s unless told).
    #[must_use]
    pub fn down_after(mut self, after: Duration) -> Self {
        self.down_after = after;
        self
    }

    /// The Sentinels' `failover-timeout` (3 s unless told): how long a failover may
    /// take, and twice it how long before a Sentinel that voted in one starts another.
    #[must_use]
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.failover_timeout = timeout;
        self
    }

    /// Starts the master, then its replicas, waits until they replicate it, then starts
    /// the Sentinels and waits until each of them sees the master up, all its replicas
    /// and all the other Sentinels: a failover can be asked for at once.
    ///
    /// # Panics
    /// When the quorum is 0 or more than the Sentinels, a server does not start, or the
    /// bed is not whole within 30 s (showing every process's log tail).
    pub async fn start(self) -> SentinelBed {
        assert!(
            (1..=self.sentinels).contains(&self.quorum),
            "a quorum of {} among {} Sentinels",
            self.quorum,
            self.sentinels
        );
        let started = Instant::now();
        let data_node = || {
            RedisServer::builder()
                .binary(&self.binary)
                .args(DATA_NODE_ARGS)
        };
        let mut nodes = vec![data_node().start()];
        let master_port = nodes[0].port().to_string();
        let replica_of = ["--replicaof", "127.0.0.1", &master_port];
        nodes.extend((0..self.replicas).map(|_| data_node().args(replica_of).start()));
        let mut bed = SentinelBed {
            sentinels: Vec::new(),
            nodes,
            master_name: self.master_name.clone(),
        };
        let master = bed.nodes[0].address();
        // A Sentinel learns a master's replicas from the master's INFO, which it asks
        // for on connecting and then every ten seconds: replicas linked before the
        // Sentinels start are seen at once.
        bed.wait_for_replicas_of(&master, &bed.nodes[1..]).await;
        let config = self.sentinel_config(&master_port);
        bed.sentinels = (0..self.sentinels)
            .map(|_| {
                RedisServer::builder()
                    .binary(&self.binary)
                    .config(config.clone())
                    .args(["--sentinel"])
                    .start()
            })
            .collect();
        bed.wait_for_sentinels_to_see(&master, self.replicas).await;
        println!("{bed} ready in {:.1?}", started.elapsed());
        bed
    }

    /// A Sentinel's configuration file: what it monitors and how quickly it acts.
    /// Its port, bind address and directory come from the command line.
    fn sentinel_config(&self, master_port: &str) -> String {
        let name = &self.master_name;
        format!(
            "sentinel resolve-hostnames no\n\
             sentinel monitor {name} 127.0.0.1 {master_port} {}\n\
             sentinel down-after-milliseconds {name} {}\n\
             sentinel failover-timeout {name} {}\n\
             sentinel parallel-syncs {name} 1\n",
            self.quorum,
            self.down_after.as_millis(),
            self.failover_timeout.as_millis(),
        )
    }
}

/// A Redis Sentinel deployment on loopback: a master (at first the first of
/// [`SentinelBed::nodes`]), its replicas, and Sentinels monitoring it under
/// [`SentinelBed::master_name`] with short timings (a node is down after 1 s of
/// silence). Dropping it (also while unwinding from a panic) kills every process.
///
/// ```no_run
/// # async fn demo() {
/// use docket_testkit::SentinelBed;
///
/// let mut bed = SentinelBed::start().await;
/// let url = bed.url(); // redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/mymaster/0
/// // ... connect to `url`, start work ...
/// let failover = bed.kill_master().await;
/// println!("{} took over from {} in {:?}", failover.new, failover.old, failover.took);
/// # }
/// ```
#[derive(Debug)]
pub struct SentinelBed {
    /// First, so that dropping the bed stops the Sentinels before the nodes they
    /// would fail over.
    sentinels: Vec<RedisServer>,
    nodes: Vec<RedisServer>,
    master_name: String,
}

impl SentinelBed {
    /// Starts a master, two replicas and three Sentinels monitoring it as `mymaster`
    /// with quorum 2, and waits until a failover can be asked for.
    ///
    /// # Panics
    /// When a server does not start, or the bed is not whole within 30 s.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A bed to configure before starting it: as [`SentinelBed::start`]'s until told
    /// otherwise.
    pub fn builder() -> SentinelBedBuilder {
        SentinelBedBuilder {
            binary: PathBuf::from("redis-server"),
            master_name: "mymaster".to_owned(),
            replicas: 2,
            sentinels: 3,
            quorum: 2,
            down_after: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(3),
        }
    }

    /// The name the Sentinels monitor the master under.
    pub fn master_name(&self) -> &str {
        &self.master_name
    }

    /// The Sentinels' addresses, `127.0.0.1:port` each.
    pub fn sentinel_addresses(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::address).collect()
    }

    /// The docket URL of the bed's database 0:
    /// `redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,.../{master name}/0`.
    pub fn url(&self) -> String {
        self.url_with_db(0)
    }

    /// The docket URL of the bed's database `db`.
    pub fn url_with_db(&self, db: u32) -> String {
        format!(
            "redis+sentinel://{}/{}/{db}",
            self.sentinel_addresses().join(","),
            self.master_name
        )
    }

    /// The data nodes: the master the bed started with, then its replicas. Which is
    /// the master now, [`SentinelBed::master`] tells.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The data node at `address` (`127.0.0.1:port`), to inspect or to pause with
    /// [`signal`](crate::signal).
    ///
    /// # Panics
    /// When no data node of the bed has that address.
    pub fn node(&self, address: &str) -> &RedisServer {
        let index = self.node_index(address);
        &self.nodes[index]
    }

    /// The data node at `address`, to kill or restart. A restarted node runs with the
    /// arguments it started with, as a master (the first master) or a replica of the
    /// first master, whatever they are now: the Sentinels make it a replica of the
    /// current master within about 20 s ([`SentinelBed::wait_for_replica`]).
    ///
    /// # Panics
    /// When no data node of the bed has that address.
    pub fn node_mut(&mut self, address: &str) -> &mut RedisServer {
        let index = self.node_index(address);
        &mut self.nodes[index]
    }

    fn node_index(&self, address: &str) -> usize {
        self.nodes
            .iter()
            .position(|node| node.address() == address)
            .unwrap_or_else(|| panic!("no data node of {self} is at {address}"))
    }

    /// The Sentinels.
    pub fn sentinels(&self) -> &[RedisServer] {
        &self.sentinels
    }

    /// The Sentinels, to kill or restart (a restarted Sentinel reads back what it
    /// learned from its configuration file). The bed's waits ask only the Sentinels
    /// that run, and wait for a paused one to answer.
    pub fn sentinels_mut(&mut self) -> &mut [RedisServer] {
        &mut self.sentinels
    }

    /// A plain synchronous connection to the data node or Sentinel at `address`.
    ///
    /// # Panics
    /// When the bed has no process at that address, or it does not accept the
    /// connection.
    pub fn connection(&self, address: &str) -> redis::Connection {
        self.nodes
            .iter()
            .chain(&self.sentinels)
            .find(|server| server.address() == address)
            .unwrap_or_else(|| panic!("no process of {self} is at {address}"))
            .connection()
    }

    /// Waits until every data node in `replicas` replicates `master` over a link that
    /// is up.
    async fn wait_for_replicas_of(&self, master: &str, replicas: &[RedisServer]) {
        self.wait(
            &format!("the replicas to link to {master}"),
            move || async move {
                for replica in replicas {
                    ask::says_replica_of(&replica.address(), master).await?;
                }
                Ok(())
            },
        )
        .await;
    }

    /// Waits until every Sentinel sees `master` up, `replicas` replicas of it up and
    /// linked, and every other Sentinel.
    async fn wait_for_sentinels_to_see(&self, master: &str, replicas: usize) {
        let others = self.sentinels.len() - 1;
        self.wait(
            "every Sentinel to see the master, its replicas and the other Sentinels",
            move || async move {
                for sentinel in &self.sentinels {
                    let address = sentinel.address();
                    ask::sees_everything(&address, &self.master_name, master, replicas, others)
                        .await?;
                }
                Ok(())
            },
        )
        .await;
    }

    /// Waits until `poll` answers `Ok`, asking every 50 ms for up to 30 s.
    ///
    /// # Panics
    /// When it has not, with what `poll` saw last and every process's log tail.
    async fn wait<T, F, Fut>(&self, what: &str, mut poll: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let deadline = Deadline::after(SETTLE_WITHIN, what);
        let seen = || {
            let answer = poll();
            async move { answer.await.map_err(Seen) }
        };
        try_wait_for(&deadline, POLL_EVERY, seen)
            .await
            .unwrap_or_else(|timed_out| panic!("{timed_out}\n{}", self.log_tails()))
    }

    /// The last lines of every process's log, for a failure message.
    fn log_tails(&self) -> String {
        let tail = |kind: &str, server: &RedisServer| {
            format!(
                "--- {kind} {} (pid {:?}), its log ends with:\n{}",
                server.address(),
                server.pid(),
                server.log_tail()
            )
        };
        self.nodes
            .iter()
            .map(|node| tail("data node", node))
            .chain(
                self.sentinels
                    .iter()
                    .map(|sentinel| tail("Sentinel", sentinel)),
            )
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for SentinelBed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addresses = |servers: &[RedisServer]| {
            servers
                .iter()
                .map(RedisServer::address)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "the Sentinel bed `{}` (data nodes {}; Sentinels {})",
            self.master_name,
            addresses(&self.nodes),
            addresses(&self.sentinels)
        )
    }
}

/// What a wait saw instead of what it awaited, shown as it is.
struct Seen(String);

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
