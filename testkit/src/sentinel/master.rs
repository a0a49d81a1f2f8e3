//! Who the master is, as the Sentinels tell clients, and the waits for it to be a
//! given node or another one, and for a node to replicate it.

use super::SentinelBed;
use super::ask;
use crate::server::RedisServer;

impl SentinelBed {
    /// The master, `127.0.0.1:port`, as the Sentinels give it to clients
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`), once every running Sentinel names the
    /// same node, none is failing over or finds it down, and the node says it is a
    /// master.
    ///
    /// # Panics
    /// When that is not so within 30 s (showing every process's log tail).
    pub async fn master(&self) -> String {
        self.wait("the Sentinels to agree on a master", || {
            self.settled_master()
        })
        .await
    }

    /// Waits until the Sentinels agree that the master is `address` (as
    /// [`SentinelBed::master`] has them agree).
    ///
    /// # Panics
    /// When they do not within 30 s.
    pub async fn wait_for_master(&self, address: &str) {
        self.wait(
            &format!("the Sentinels to agree on the master {address}"),
            move || async move {
                let master = self.settled_master().await?;
                if master == address {
                    Ok(())
                } else {
                    Err(format!("the Sentinels agree on {master}"))
                }
            },
        )
        .await;
    }

    /// Waits until the Sentinels agree on a master other than `address` (as
    /// [`SentinelBed::master`] has them agree), and returns it.
    ///
    /// # Panics
    /// When they do not within 30 s.
    pub async fn master_changed_from(&self, address: &str) -> String {
        self.wait(
            &format!("the Sentinels to agree on a master other than {address}"),
            move || async move {
                let master = self.settled_master().await?;
                if master == address {
                    Err(format!("the Sentinels still agree on {master}"))
                } else {
                    Ok(master)
                }
            },
        )
        .await
    }

    /// Waits until the data node at `address` replicates the master over a link that
    /// is up. A node that comes back as a master after its replicas were failed over
    /// (a restart, or a [`SentinelBed::failover`] that left it running) is turned into
    /// one by the Sentinels, but only after they have seen it be a master for 8 s, at
    /// their next look at it, which comes every 10 s: up to about 20 s.
    ///
    /// # Panics
    /// When it does not within 30 s.
    pub async fn wait_for_replica(&self, address: &str) {
        self.wait(
            &format!("{address} to replicate the master"),
            move || async move {
                let master = self.settled_master().await?;
                ask::says_replica_of(address, &master).await
            },
        )
        .await;
    }

    /// The master every running Sentinel names, once they all name the same node,
    /// none is failing over or finds it down, and the node says it is a master.
    async fn settled_master(&self) -> Result<String, String> {
        let mut named = Vec::new();
        for sentinel in self.running_sentinels() {
            let master = ask::master_named_by(&sentinel, &self.master_name).await?;
            named.push((sentinel, master));
        }
        let Some((_, master)) = named.first() else {
            return Err("no Sentinel runs".to_owned());
        };
        if named.iter().any(|(_, other)| other != master) {
            let views: Vec<String> = named
                .iter()
                .map(|(sentinel, master)| format!("{sentinel} names {master}"))
                .collect();
            return Err(format!("the Sentinels disagree: {}", views.join(", ")));
        }
        ask::says_master(master).await?;
        Ok(master.clone())
    }

    /// The addresses of the Sentinels whose process runs.
    pub(super) fn running_sentinels(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .filter(|sentinel| sentinel.pid().is_some())
            .map(RedisServer::address)
            .collect()
    }
}
