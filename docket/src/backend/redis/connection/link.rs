//! Connections that outlive their sockets.
//!
//! A [`Connection`] carries commands and scripts. When a reply says the socket or the
//! server behind it can no longer be used (cut off, timed out, a replica now, still
//! loading, or the credentials refused), it is dropped, and the next command dials
//! again: through the Sentinels to wherever the master is now, with the credentials as
//! they are now. Dialing that fails backs off before the next try, and commands in
//! the meantime fail at once with the last error rather than queue behind it.
//!
//! A [`Blocking`] connection carries one reader's `XREADGROUP`/`XREAD ... BLOCK`, each
//! read bounded by its block plus the response timeout, and cut short when the
//! Sentinels switch masters.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};
use tokio::sync::watch;
use tokio::time::Instant;

use super::dial::Dialer;

/// One socket's worth of connection: to a node, or a cluster's set of them.
#[derive(Clone)]
enum Socket {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Socket {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Socket {
    async fn open(dialer: &Dialer, response: Option<Duration>) -> RedisResult<Self> {
        if dialer.is_cluster() {
            Ok(Self::Cluster(dialer.cluster(response).await?))
        } else {
            Ok(Self::Node(dialer.node(response).await?))
        }
    }
}

/// Whether an error means the socket (or the server it reaches) is done with: the next
/// command should dial again. A cluster connection follows its nodes by itself, so only
/// refused credentials make it dial again.
fn spoils(error: &RedisError, cluster: bool) -> bool {
    let credentials = error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"));
    if cluster {
        return credentials;
    }
    credentials
        || error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.code(),
            Some("READONLY" | "LOADING" | "MASTERDOWN" | "UNBLOCKED")
        )
}

/// A command connection that dials again after a disruption (a cheap handle: clones
/// share it).
#[derive(Clone)]
pub(in crate::backend::redis) struct Connection {
    state: Arc<State>,
}

struct State {
    dialer: Arc<Dialer>,
    current: Mutex<Current>,
    /// Held while dialing, so one command dials and the others wait for it.
    dialing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Current {
    socket: Option<Live>,
    /// Numbers the sockets, so that an error on an old one does not drop a new one.
    opened: u64,
    /// Dialing attempts that failed in a row, and when the next may be made (unless
    /// the master has moved since the last failure: the Sentinels' switch count then).
    failures: u32,
    retry_at: Option<Instant>,
    failed_generation: u64,
    last_error: Option<RedisError>,
}

#[derive(Clone)]
struct Live {
    id: u64,
    /// The Sentinels' switch count when it was opened.
    generation: u64,
    socket: Socket,
}

impl Connection {
    /// A connection that dials on first use.
    pub(super) fn new(dialer: Arc<Dialer>) -> Self {
        Self {
            state: Arc::new(State {
                dialer,
                current: Mutex::new(Current::default()),
                dialing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Dials now unless connected, so that an unreachable server is an error at once.
    pub(super) async fn connect(&self) -> RedisResult<()> {
        self.live().await.map(drop)
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.state
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The socket to use, if there is one and the master has not moved since it opened.
    fn usable(&self) -> Option<Live> {
        let generation = self.state.dialer.generation();
        self.current()
            .socket
            .as_ref()
            .filter(|live| live.generation == generation)
            .cloned()
    }

    /// The socket to use, dialing one if needed (or failing at once while dialing backs
    /// off).
    async fn live(&self) -> RedisResult<Live> {
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        let _dialing = self.state.dialing.lock().await;
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        {
            let current = self.current();
            if let (Some(retry_at), Some(error)) = (current.retry_at, &current.last_error)
                && Instant::now() < retry_at
                && current.failed_generation == self.state.dialer.generation()
            {
                return Err(error.clone());
            }
        }
        let dialer = &self.state.dialer;
        let opened = Socket::open(dialer, Some(dialer.options.response_timeout)).await;
        let mut current = self.current();
        match opened {
            Ok(socket) => {
                current.opened += 1;
                let live = Live {
                    id: current.opened,
                    generation: dialer.generation(),
                    socket,
                };
                current.socket = Some(live.clone());
                current.failures = 0;
                current.retry_at = None;
                current.last_error = None;
                Ok(live)
            }
            Err(error) => {
                current.socket = None;
                current.failures = current.failures.saturating_add(1);
                let options = &dialer.options;
                let delay = options
                    .reconnect_min_delay
                    .saturating_mul(1 << current.failures.min(16).saturating_sub(1))
                    .min(options.reconnect_max_delay);
                current.retry_at = Some(Instant::now() + delay);
                current.failed_generation = dialer.generation();
                current.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// After `error` on socket `id`: drops the socket if the error spoils it.
    /// Runs `request` on the socket `(id, generation)`, cut short by a switch of
    /// masters, and drops that socket if the reply spoils it.
    async fn over<T>(
        &self,
        (id, generation): (u64, u64),
        request: impl Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        let reply = unless_switched(&self.state.dialer, generation, request).await;
        if let Err(error) = &reply {
            self.failed(id, error);
        }
        reply
    }

    fn failed(&self, id: u64, error: &RedisError) {
        if !spoils(error, self.state.dialer.is_cluster()) {
            return;
        }
        let mut current = self.current();
        if current.socket.as_ref().is_some_and(|live| live.id == id) {
            tracing::debug!(url = %self.state.dialer.shown, %error, "dropping a broken connection");
            current.socket = None;
        }
    }

    /// This connection's current socket, held for several commands that must go over
    /// the same one (a write, then `WAIT` for its replicas).
    pub(in crate::backend::redis) async fn pinned(&self) -> RedisResult<Pinned> {
        let live = self.live().await?;
        Ok(Pinned {
            connection: self.clone(),
            live,
        })
    }
}

/// Runs `request` on a socket opened in `generation`; with Sentinels, a switch of
/// masters (or a failover starting) cuts it short, so that a command on a master that
/// froze does not wait out its response timeout.
async fn unless_switched<T>(
    dialer: &Dialer,
    generation: u64,
    request: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    if dialer.sentinels().is_none() {
        return request.await;
    }
    let mut switches = dialer.switched();
    if *switches.borrow_and_update() != generation {
        return Err(switched());
    }
    tokio::select! {
        reply = request => reply,
        _ = switches.changed() => Err(switched()),
    }
}

fn switched() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the Sentinels are moving the master",
    ))
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut live = self.live().await?;
            let socket = (live.id, live.generation);
            self.over(socket, live.socket.req_packed_command(cmd)).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut live = self.live().await?;
            let socket = (live.id, live.generation);
            let request = live.socket.req_packed_commands(pipeline, offset, count);
            self.over(socket, request).await
        })
    }

    fn get_db(&self) -> i64 {
        self.current()
            .socket
            .as_ref()
            .map_or(0, |live| live.socket.get_db())
    }
}

/// One socket of a [`Connection`], kept for a sequence of commands: it never dials,
/// and an error that spoils it still drops it from its connection.
pub(in crate::backend::redis) struct Pinned {
    connection: Connection,
    live: Live,
}

impl Pinned {
    /// On a cluster, the node serving `key`'s slot, for a command without a key (`WAIT`)
    /// that must reach the node a keyed one did.
    pub(in crate::backend::redis) async fn query_at_key<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        let reply = match &mut self.live.socket {
            Socket::Cluster(cluster) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::with_key(key, SlotAddr::Master),
                ));
                cluster.route_command(cmd.clone(), route).await
            }
            socket @ Socket::Node(_) => socket.req_packed_command(cmd).await,
        };
        match reply {
            Ok(value) => redis::from_redis_value(value).map_err(RedisError::from),
            Err(error) => {
                self.connection.failed(self.live.id, &error);
                Err(error)
            }
        }
    }
}

impl ConnectionLike for Pinned {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let socket = (self.live.id, self.live.generation);
            let request = self.live.socket.req_packed_command(cmd);
            self.connection.over(socket, request).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let socket = (self.live.id, self.live.generation);
            let request = self
                .live
                .socket
                .req_packed_commands(pipeline, offset, count);
            self.connection.over(socket, request).await
        })
    }

    fn get_db(&self) -> i64 {
        self.live.socket.get_db()
    }
}

/// One reader's own connection for blocking reads: never shared, without a response
/// timeout that would cut every blocking read short, but with a deadline per read.
pub(in crate::backend::redis) struct Blocking {
    socket: Socket,
    /// Beyond a read's own block, how long its answer may take.
    margin: Duration,
    switches: watch::Receiver<u64>,
}

impl Blocking {
    pub(super) async fn open(dialer: &Dialer) -> RedisResult<Self> {
        let mut switches = dialer.switched();
        switches.mark_unchanged();
        Ok(Self {
            socket: Socket::open(dialer, None).await?,
            margin: dialer.options.response_timeout,
            switches,
        })
    }

    /// Runs `cmd`, a read blocking up to `block`. A server that does not answer within
    /// `block` plus the response timeout is taken for gone (a master that died
    /// silently), and a switch of masters ends the read at once; either is an error,
    /// after which the reader opens a new connection.
    pub(in crate::backend::redis) async fn read<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        block: Duration,
    ) -> RedisResult<T> {
        let deadline = block + self.margin;
        let reading = tokio::time::timeout(deadline, cmd.query_async::<T>(&mut self.socket));
        tokio::select! {
            read = reading => read.unwrap_or_else(|_| Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer to a blocking read within {deadline:?}: the server may be gone"),
            )))),
            _ = self.switches.changed() => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "the Sentinels switched masters",
            ))),
        }
    }
}
