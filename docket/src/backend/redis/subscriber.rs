//! The handle's one pub/sub connection, which every subscription of the handle shares:
//! each `result()`, `subscribe()` and the worker's cancellation listener.
//!
//! A task mirrors the backend's subscriptions table (`backend/subscriptions`) onto the
//! connection: a key's `{p}:state:{key}` and `{p}:progress:{key}` channels are
//! subscribed while the key has followers, in batches, and `{p}:cancel:*` while anyone
//! follows cancellations. It routes what it hears to the followers in-process, and
//! keeps the handle registered once in `{p}:listeners` while any key is subscribed
//! (scripts publish per-task events only then).
//!
//! When the connection is lost, followers of cancellations are told at once; followers
//! of keys wait while the task reconnects with backoff and subscribes every followed
//! key again, and are then told, so that each reads its record for what it missed. A
//! renewal that finds the registration gone (a lapsed lease, a flushed key) tells them
//! the same way. Once nothing is followed the task lingers a moment, then closes the
//! connection and ends; the next follower starts another.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use redis::aio::{PubSub, PubSubSink, PubSubStream};
use redis::{Msg, RedisError, RedisResult};
use tokio::time::Instant;

use super::Shared;
use super::scripts::SCRIPTS;
use super::wire::duration_millis;
use crate::backend::subscriptions::{Follower, Subscriptions, Topic};
use crate::backend::{Cancelled, EventStream};
use crate::error::{Error, Result};
use crate::model::Event;

/// How long the handle's registration in `{p}:listeners` counts without a renewal.
const LISTEN_LEASE: Duration = Duration::from_secs(30);
/// How often the registration is renewed and the connection pinged: a registration
/// found gone is told to the followers within this.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Keys per `SUBSCRIBE` or `UNSUBSCRIBE` (two channels each).
const BATCH: usize = 1000;
/// How often the keys left meanwhile are unsubscribed from: in a few batches rather
/// than as each waiter ends, at no cost but their messages heard a moment longer.
const UNSUBSCRIBE_EVERY: Duration = Duration::from_millis(200);
/// How long the connection stays open once nothing is followed, for the next follower.
const LINGER: Duration = Duration::from_secs(5);

/// Follows the state and progress events of `key`. The stream ends when events may
/// have been missed: subscribe again, then read the record.
pub(super) async fn subscribe(shared: &Arc<Shared>, key: &str) -> Result<EventStream> {
    joined(shared, shared.subscriptions.follow(key)).await
}

/// Follows every `{p}:cancel:{key}` channel. The stream ends when the connection is
/// lost: until subscribed again, the records are the only witness.
pub(super) async fn cancellations(
    shared: &Arc<Shared>,
) -> Result<Pin<Box<dyn Stream<Item = Cancelled> + Send>>> {
    joined(shared, shared.subscriptions.follow_cancellations()).await
}

/// Starts the task unless one runs, and waits until the server subscribed for
/// `follower`.
async fn joined<T: Topic>(
    shared: &Arc<Shared>,
    follower: Follower<T>,
) -> Result<Pin<Box<dyn Stream<Item = T> + Send>>> {
    if let Some(server) = shared.subscriptions.claim_serving() {
        tokio::spawn(serve(Arc::clone(shared), server));
    }
    follower.joined().await?;
    Ok(Box::pin(follower))
}

/// Tells the followers if the task ends without handing over (its runtime shut down).
struct Serving {
    subscriptions: Arc<Subscriptions>,
    server: u64,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.subscriptions.server_gone(self.server);
    }
}

/// The task: connects, serves, reconnects with backoff, until nothing is followed.
async fn serve(shared: Arc<Shared>, server: u64) {
    let subscriptions = &shared.subscriptions;
    let _serving = Serving {
        subscriptions: Arc::clone(subscriptions),
        server,
    };
    let listener = uuid::Uuid::now_v7().to_string();
    let options = shared.endpoint.options();
    let mut delay = options.reconnect_min_delay;
    loop {
        if subscriptions.stop_serving_if_idle(server) {
            return;
        }
        let error = match shared.endpoint.pubsub().await {
            Ok(connection) => {
                delay = options.reconnect_min_delay;
                match Session::new(&shared, server, &listener, connection)
                    .run()
                    .await
                {
                    Ended::Idle => return,
                    Ended::Lost(error) => error,
                }
            }
            Err(error) => error,
        };
        tracing::debug!(
            docket = %shared.keys.prefix(),
            "the subscriber connection is lost, reconnecting in {delay:?}: {error}"
        );
        subscriptions.disconnected(&|| Error::from(error.clone()));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(options.reconnect_max_delay);
    }
}

/// How a session ended.
enum Ended {
    /// Nothing was followed for a while: the task ends.
    Idle,
    /// The connection failed.
    Lost(RedisError),
}

/// One connection's life.
struct Session<'a> {
    shared: &'a Shared,
    server: u64,
    listener: &'a str,
    sink: PubSubSink,
    messages: PubSubStream,
    /// Registered in `{p}:listeners` on this connection.
    registered: bool,
    /// The pattern cancellations are followed through, while they are.
    cancel_pattern: Option<String>,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared, server: u64, listener: &'a str, connection: PubSub) -> Self {
        let (sink, messages) = connection.split();
        Self {
            shared,
            server,
            listener,
            sink,
            messages,
            registered: false,
            cancel_pattern: None,
        }
    }

    async fn run(mut self) -> Ended {
        let subscriptions = &*self.shared.subscriptions;
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.reset();
        let mut unsubscribe = tokio::time::interval(UNSUBSCRIBE_EVERY);
        let mut flush = false;
        let mut idle_since = None;
        let mut switches = self.shared.endpoint.switched();
        loop {
            // A server that stops answering (frozen, partitioned) must not hold the
            // subscriptions: each command gets the response timeout, and a switch of
            // masters cuts the change short.
            let applied = tokio::select! {
                applied = self.apply(std::mem::take(&mut flush)) => applied,
                Some(()) = switched(switches.as_mut()) => Err(moved()),
            };
            if let Err(error) = applied {
                return Ended::Lost(error);
            }
            idle_since = match idle_since {
                _ if !subscriptions.is_idle() => None,
                None => Some(Instant::now()),
                since => since,
            };
            let linger = idle_since.map_or_else(Instant::now, |since| since + LINGER);
            tokio::select! {
                message = self.messages.next() => match message {
                    Some(message) => self.route(&message),
                    None => return Ended::Lost(closed()),
                },
                () = subscriptions.changed() => {}
                Some(()) = switched(switches.as_mut()) => return Ended::Lost(moved()),
                _ = unsubscribe.tick() => flush = true,
                _ = renew.tick() => {
                    if let Err(error) = self.renew().await {
                        return Ended::Lost(error);
                    }
                }
                () = tokio::time::sleep_until(linger), if idle_since.is_some() => {
                    if subscriptions.stop_serving_if_idle(self.server) {
                        return Ended::Idle;
                    }
                }
            }
        }
    }

    /// Tells the server what changed in the table: keys to subscribe (registering the
    /// handle first), to unsubscribe (if `unsubscribe`), and cancellations.
    async fn apply(&mut self, unsubscribe: bool) -> RedisResult<()> {
        let subscriptions = &*self.shared.subscriptions;
        let changes = subscriptions.changes(unsubscribe);
        if changes.is_empty() {
            return Ok(());
        }
        if !changes.subscribe.is_empty() && !self.registered {
            listen(self.shared, self.listener, LISTEN_LEASE).await?;
            self.registered = true;
        }
        for keys in changes.subscribe.chunks(BATCH) {
            let channels = self.channels(keys);
            match answered(self.shared, "SUBSCRIBE", self.sink.subscribe(channels)).await {
                Ok(()) => subscriptions.subscribed(keys),
                Err(error) if error.code().is_some() => {
                    tracing::warn!(docket = %self.shared.keys.prefix(), "cannot subscribe: {error}");
                    subscriptions.refused(keys, &|| Error::from(error.clone()));
                }
                Err(error) => return Err(error),
            }
        }
        for keys in changes.unsubscribe.chunks(BATCH) {
            let channels = self.channels(keys);
            answered(self.shared, "UNSUBSCRIBE", self.sink.unsubscribe(channels)).await?;
            subscriptions.unsubscribed(keys);
        }
        match changes.cancellations {
            Some(true) => match self.follow_cancellations().await {
                Ok(pattern) => {
                    self.cancel_pattern = Some(pattern);
                    subscriptions.cancellations_subscribed(true);
                }
                Err(error) if error.code().is_some() => {
                    subscriptions.cancellations_refused(&|| Error::from(error.clone()));
                }
                Err(error) => return Err(error),
            },
            Some(false) => {
                if let Some(pattern) = self.cancel_pattern.take() {
                    answered(self.shared, "PUNSUBSCRIBE", self.sink.punsubscribe(pattern)).await?;
                }
                subscriptions.cancellations_subscribed(false);
            }
            None => {}
        }
        if self.registered && !subscriptions.follows_any_key() {
            self.registered = false;
            if let Err(error) = listen(self.shared, self.listener, Duration::ZERO).await {
                tracing::debug!(docket = %self.shared.keys.prefix(), "could not end the registration: {error}");
            }
        }
        Ok(())
    }

    /// The state and progress channels of `keys`.
    fn channels(&self, keys: &[String]) -> Vec<String> {
        let names = &self.shared.keys;
        keys.iter()
            .flat_map(|key| [names.state_channel(key), names.progress_channel(key)])
            .collect()
    }

    /// `PSUBSCRIBE {p}:cancel:*`, which is refused to a user whose ACL grants only
    /// `&{p}:*` (Redis compares subscribed patterns literally with the granted ones):
    /// then `{p}:*`, which that rule grants, keeping only the cancellations. Returns
    /// the pattern followed.
    async fn follow_cancellations(&mut self) -> RedisResult<String> {
        let keys = &self.shared.keys;
        let pattern = keys.cancel_pattern();
        match answered(self.shared, "PSUBSCRIBE", self.sink.psubscribe(&pattern)).await {
            Ok(()) => Ok(pattern),
            Err(error)
                if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) =>
            {
                let fallback = keys.docket_pattern();
                tracing::debug!(
                    docket = %keys.prefix(),
                    "cannot follow `{pattern}` ({error}); following `{fallback}` instead",
                );
                answered(self.shared, "PSUBSCRIBE", self.sink.psubscribe(&fallback)).await?;
                Ok(fallback)
            }
            Err(error) => Err(error),
        }
    }

    /// Hands a message to the followers of its key, or of cancellations.
    fn route(&self, message: &Msg) {
        let keys = &self.shared.keys;
        let subscriptions = &self.shared.subscriptions;
        let channel = message.get_channel_name();
        if message.from_pattern() {
            if let Some(key) = keys.key_of_cancel_channel(channel) {
                subscriptions.publish_cancellation(Cancelled {
                    key: key.to_owned(),
                    // Earlier versions published the key: then any run of it.
                    generation: message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|g| g.parse().ok()),
                });
            }
            return;
        }
        let Some(key) = keys.key_of_event_channel(channel) else {
            return;
        };
        match serde_json::from_slice::<Event>(message.get_payload_bytes()) {
            Ok(event) => subscriptions.publish(key, || event),
            Err(error) => {
                tracing::warn!(channel = %channel, "ignoring an unreadable event: {error}");
            }
        }
    }

    /// Pings the connection, and renews the registration; one found gone is told to
    /// every follower of a key (events were not published meanwhile).
    async fn renew(&mut self) -> RedisResult<()> {
        let _: redis::Value = answered(self.shared, "PING", self.sink.ping()).await?;
        if self.registered {
            match listen(self.shared, self.listener, LISTEN_LEASE).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(docket = %self.shared.keys.prefix(), "the registration as a listener was gone");
                    self.shared.subscriptions.lapsed();
                }
                Err(error) => {
                    tracing::debug!(docket = %self.shared.keys.prefix(), "could not renew the registration: {error}");
                }
            }
        }
        Ok(())
    }
}

/// Starts or renews (`lease` > 0) or ends (`lease` = 0) the registration `listener` in
/// `{p}:listeners` (listen.lua); whether it was registered and unexpired before.
async fn listen(shared: &Shared, listener: &str, lease: Duration) -> RedisResult<bool> {
    let held: i64 = SCRIPTS
        .listen
        .key(shared.keys.listeners())
        .arg(shared.keys.prefix())
        .arg(listener)
        .arg(duration_millis(lease))
        .invoke_async(&mut shared.connection())
        .await?;
    Ok(held == 1)
}

/// Resolves when the Sentinels switch masters; never without Sentinels.
async fn switched(switches: Option<&mut tokio::sync::watch::Receiver<u64>>) -> Option<()> {
    match switches {
        Some(switches) => switches.changed().await.ok(),
        None => std::future::pending().await,
    }
}

fn moved() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the Sentinels switched masters",
    ))
}

fn closed() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "the subscriber connection was closed",
    ))
}

/// `request`'s answer, or an error once the response timeout has passed without one.
async fn answered<T>(
    shared: &Shared,
    command: &str,
    request: impl Future<Output = RedisResult<T>>,
) -> RedisResult<T> {
    let timeout = shared.endpoint.options().response_timeout;
    tokio::time::timeout(timeout, request)
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the subscriber connection did not answer {command} within {timeout:?}"),
            )))
        })
}
