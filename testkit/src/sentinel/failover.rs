//! What a failover test does to the bed, each step waiting until it has taken effect:
//! fail the master over, kill it, or demote it.

use std::fmt;
use std::time::{Duration, Instant};

use super::SentinelBed;
use super::ask;

/// A change of master: the node it left, the node it went to, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    /// The master before, `127.0.0.1:port`.
    pub old: String,
    /// The master after, `127.0.0.1:port`.
    pub new: String,
    /// From the cause (the command, the kill) until the Sentinels agreed on the new
    /// master, were done failing over, and the new master said it was one (for
    /// [`SentinelBed::demote_master`], until the old master replicated the new one).
    pub took: Duration,
}

impl fmt::Display for Failover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {} in {:.1?}", self.old, self.new, self.took)
    }
}

impl SentinelBed {
    /// Has a Sentinel fail the master over (`SENTINEL FAILOVER`, asked again while
    /// no Sentinel can yet), and waits until the Sentinels agree on the promoted
    /// replica and it says it is a master. The old master keeps running, still a
    /// master until the Sentinels turn it into a replica 8 to 20 s later: what clients
    /// that stay on it write meanwhile, that turn discards.
    /// [`SentinelBed::demote_master`] does not leave that window.
    ///
    /// # Panics
    /// When no Sentinel starts the failover, or it does not complete, within 30 s.
    pub async fn failover(&self) -> Failover {
        let old = self.master().await;
        let started = Instant::now();
        self.wait(
            &format!("a Sentinel to start failing `{}` over", self.master_name),
            || async {
                let mut refusals = Vec::new();
                for sentinel in self.running_sentinels() {
                    match ask::start_failover(&sentinel, &self.master_name).await {
                        Ok(()) => return Ok(()),
                        Err(refusal) => refusals.push(refusal),
                    }
                }
                Err(refusals.join("; "))
            },
        )
        .await;
        self.changed_from(old, started).await
    }

    /// SIGKILLs the master and waits until the Sentinels find it down, promote a
    /// replica, and agree on it. The killed node stays down until
    /// [`SentinelBed::node_mut`]`(&failover.old).restart()`.
    ///
    /// # Panics
    /// When the Sentinels have not promoted a replica within 30 s.
    pub async fn kill_master(&mut self) -> Failover {
        let old = self.master().await;
        let started = Instant::now();
        self.node_mut(&old).kill();
        self.changed_from(old, started).await
    }

    /// Makes the master a replica while it keeps running: a
    /// [`SentinelBed::failover`], then, at once, what the Sentinels would do to the
    /// old master up to 20 s later: `REPLICAOF` the new master and close every client
    /// connection to it. Waits until it replicates the new master; `failover.old` is
    /// then the old master, now a replica, for a test to check that clients moved off
    /// it.
    ///
    /// # Panics
    /// When the failover does not complete, or the old master does not replicate the
    /// new one, within 30 s each.
    pub async fn demote_master(&self) -> Failover {
        let started = Instant::now();
        let failover = self.failover().await;
        ask::make_replica(&failover.old, &failover.new)
            .await
            .unwrap_or_else(|error| panic!("demoting {}: {error}", failover.old));
        self.wait_for_replica(&failover.old).await;
        let demoted = Failover {
            took: started.elapsed(),
            ..failover
        };
        println!("{self}: demoted {demoted}");
        demoted
    }

    /// Waits for a master other than `old`, and reports the change since `started`.
    async fn changed_from(&self, old: String, started: Instant) -> Failover {
        let new = self.master_changed_from(&old).await;
        let failover = Failover {
            old,
            new,
            took: started.elapsed(),
        };
        println!("{self}: failed over {failover}");
        failover
    }
}
