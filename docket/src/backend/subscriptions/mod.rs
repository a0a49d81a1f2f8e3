//! The subscriptions of one backend, routed in-process: every follower of a key shares
//! one subscription to it, and every subscription of a Redis backend shares one
//! connection (`redis/subscriber.rs` mirrors this table onto it).
//!
//! A key is followed while it has followers: its first follower asks the server to
//! subscribe (a batch of keys at a time), its last one leaving asks it to unsubscribe.
//! What the server hears is routed here to each follower's inbox. A follower is told
//! when it may have missed something by the end of its stream: the connection was lost
//! and its key subscribed again on the next one, its registration as a listener was
//! found gone, or it stopped reading and its inbox overflowed. It then subscribes again
//! and reads the record for what it missed.
//!
//! On `memory://` there is no server: a key is followed the moment it has a follower.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

pub(crate) use self::follower::Follower;
use self::follower::{Inbox, Standing};
use super::Cancelled;
use crate::error::Error;
use crate::model::Event;

/// The subscriptions of one backend: who follows which key, and who follows
/// cancellations.
pub(crate) struct Subscriptions {
    table: Mutex<Table>,
    /// Woken when the server has something to be told (a key to subscribe or
    /// unsubscribe).
    changed: Notify,
    /// Whether a server confirms each subscription (Redis) or none is needed (memory).
    served: bool,
}

#[derive(Default)]
pub(crate) struct Table {
    keys: HashMap<String, Followed<Event>>,
    cancellations: Followed<Cancelled>,
    /// Keys the server should subscribe to, it seems.
    to_subscribe: Vec<String>,
    /// Keys the server should unsubscribe from, it seems.
    to_unsubscribe: Vec<String>,
    /// The task serving the table (Redis), if one runs.
    server: Option<u64>,
    servers_started: u64,
}

/// The followers of one topic (a key's events, or cancellations), and where its
/// subscription on the server stands.
pub(crate) struct Followed<T> {
    followers: Vec<Arc<Inbox<T>>>,
    on_server: OnServer,
    /// Listed to be looked at by [`Subscriptions::changes`].
    queued: bool,
}

impl<T> Default for Followed<T> {
    fn default() -> Self {
        Self {
            followers: Vec::new(),
            on_server: OnServer::Off,
            queued: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnServer {
    Off,
    Subscribing,
    On,
    Unsubscribing,
}

/// What the server should be told, as [`Subscriptions::changes`] lists it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Keys to subscribe to; confirm with [`Subscriptions::subscribed`].
    pub subscribe: Vec<String>,
    /// Keys to unsubscribe from; confirm with [`Subscriptions::unsubscribed`].
    pub unsubscribe: Vec<String>,
    /// Subscribe to cancellations (`Some(true)`) or unsubscribe (`Some(false)`);
    /// confirm with [`Subscriptions::cancellations_subscribed`].
    pub cancellations: Option<bool>,
}

impl Changes {
    pub(crate) fn is_empty(&self) -> bool {
        self.subscribe.is_empty() && self.unsubscribe.is_empty() && self.cancellations.is_none()
    }
}

/// What a follower hears about: a key's events, or cancellations.
pub(crate) trait Topic: Clone + Send + 'static {
    /// Its followers in `table`.
    fn followed<'a>(table: &'a mut Table, key: Option<&str>) -> Option<&'a mut Followed<Self>>;
}

impl Topic for Event {
    fn followed<'a>(table: &'a mut Table, key: Option<&str>) -> Option<&'a mut Followed<Self>> {
        table.keys.get_mut(key?)
    }
}

impl Topic for Cancelled {
    fn followed<'a>(table: &'a mut Table, _: Option<&str>) -> Option<&'a mut Followed<Self>> {
        Some(&mut table.cancellations)
    }
}

impl Subscriptions {
    /// Subscriptions a server confirms (Redis): see [`changes`](Self::changes).
    pub(crate) fn served() -> Arc<Self> {
        Arc::new(Self::new(true))
    }

    /// Subscriptions without a server (memory): a follower hears from the start.
    pub(crate) fn local() -> Arc<Self> {
        Arc::new(Self::new(false))
    }

    fn new(served: bool) -> Self {
        Self {
            table: Mutex::default(),
            changed: Notify::new(),
            served,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new follower of `key`'s events. On a served table, await
    /// [`Follower::joined`] before relying on it.
    pub(crate) fn follow(self: &Arc<Self>, key: &str) -> Follower<Event> {
        let mut table = self.table();
        let Table {
            keys, to_subscribe, ..
        } = &mut *table;
        let followed = keys.entry(key.to_owned()).or_default();
        let inbox = self.join(followed);
        let subscribe = self.served && !followed.queued && followed.on_server == OnServer::Off;
        if subscribe {
            followed.queued = true;
            to_subscribe.push(key.to_owned());
        }
        drop(table);
        if subscribe {
            self.changed.notify_one();
        }
        Follower {
            subscriptions: Arc::clone(self),
            key: Some(key.to_owned()),
            inbox,
        }
    }

    /// A new follower of cancellations.
    pub(crate) fn follow_cancellations(self: &Arc<Self>) -> Follower<Cancelled> {
        let mut table = self.table();
        let inbox = self.join(&mut table.cancellations);
        let followed = &mut table.cancellations;
        if self.served && !followed.queued && followed.on_server == OnServer::Off {
            followed.queued = true;
            drop(table);
            self.changed.notify_one();
        }
        Follower {
            subscriptions: Arc::clone(self),
            key: None,
            inbox,
        }
    }

    fn join<T>(&self, followed: &mut Followed<T>) -> Arc<Inbox<T>> {
        let standing = if !self.served || followed.on_server == OnServer::On {
            Standing::Listening
        } else {
            Standing::Joining
        };
        let inbox = Arc::new(Inbox::new(standing));
        followed.followers.push(Arc::clone(&inbox));
        inbox
    }

    fn leave<T: Topic>(&self, key: Option<&str>, inbox: &Arc<Inbox<T>>) {
        let mut table = self.table();
        let Some(followed) = T::followed(&mut table, key) else {
            return;
        };
        followed
            .followers
            .retain(|other| !Arc::ptr_eq(other, inbox));
        if !followed.followers.is_empty() {
            return;
        }
        // The last follower left: unsubscribe, or forget a key the server never had.
        // (A subscription under way is looked at again once confirmed.)
        let unsubscribe = self.served && followed.on_server == OnServer::On && !followed.queued;
        if unsubscribe {
            followed.queued = true;
        }
        let forget = !self.served || (followed.on_server == OnServer::Off && !followed.queued);
        match key {
            Some(key) if unsubscribe => table.to_unsubscribe.push(key.to_owned()),
            Some(key) if forget => {
                table.keys.remove(key);
            }
            _ => {}
        }
        drop(table);
        if unsubscribe {
            self.changed.notify_one();
        }
    }

    /// Waits until the server has something to be told (a permit is kept if nobody
    /// waits).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// What the server must be told now, unsubscribing from keys left only if
    /// `unsubscribe` (they can wait, to be told in bigger batches): each key listed is
    /// marked as under way until confirmed.
    pub(crate) fn changes(&self, unsubscribe: bool) -> Changes {
        let mut table = self.table();
        let mut changes = Changes::default();
        let mut keys = std::mem::take(&mut table.to_subscribe);
        if unsubscribe {
            keys.append(&mut table.to_unsubscribe);
        }
        for key in keys {
            let Some(followed) = table.keys.get_mut(&key) else {
                continue;
            };
            followed.queued = false;
            match (followed.on_server, followed.followers.is_empty()) {
                (OnServer::Off, false) => {
                    followed.on_server = OnServer::Subscribing;
                    changes.subscribe.push(key);
                }
                (OnServer::On, true) => {
                    followed.on_server = OnServer::Unsubscribing;
                    changes.unsubscribe.push(key);
                }
                (OnServer::Off, true) => {
                    table.keys.remove(&key);
                }
                _ => {}
            }
        }
        let cancellations = &mut table.cancellations;
        if std::mem::take(&mut cancellations.queued) {
            match (cancellations.on_server, cancellations.followers.is_empty()) {
                (OnServer::Off, false) => {
                    cancellations.on_server = OnServer::Subscribing;
                    changes.cancellations = Some(true);
                }
                (OnServer::On, true) => {
                    cancellations.on_server = OnServer::Unsubscribing;
                    changes.cancellations = Some(false);
                }
                _ => {}
            }
        }
        changes
    }

    /// The server subscribed to `keys`: their followers hear from now on (those that
    /// heard before the connection was lost are told they may have missed events).
    pub(crate) fn subscribed(&self, keys: &[String]) {
        let mut table = self.table();
        let Table {
            keys: all,
            to_subscribe,
            to_unsubscribe,
            ..
        } = &mut *table;
        for key in keys {
            if let Some(followed) = all.get_mut(key)
                && followed.on_server == OnServer::Subscribing
            {
                followed.on_server = OnServer::On;
                followed.confirm();
                followed.requeue(key, to_subscribe, to_unsubscribe);
            }
        }
    }

    /// The server unsubscribed from `keys`.
    pub(crate) fn unsubscribed(&self, keys: &[String]) {
        let mut table = self.table();
        let Table {
            keys: all,
            to_subscribe,
            to_unsubscribe,
            ..
        } = &mut *table;
        for key in keys {
            if let Some(followed) = all.get_mut(key)
                && followed.on_server == OnServer::Unsubscribing
            {
                followed.on_server = OnServer::Off;
                if followed.followers.is_empty() && !followed.queued {
                    all.remove(key);
                } else {
                    followed.requeue(key, to_subscribe, to_unsubscribe);
                }
            }
        }
    }

    /// The server subscribed to cancellations (`true`) or unsubscribed (`false`).
    pub(crate) fn cancellations_subscribed(&self, on: bool) {
        let mut table = self.table();
        let cancellations = &mut table.cancellations;
        if cancellations.on_server != OnServer::Subscribing
            && cancellations.on_server != OnServer::Unsubscribing
        {
            return;
        }
        cancellations.on_server = if on { OnServer::On } else { OnServer::Off };
        if on {
            cancellations.confirm();
        }
        // Followers that came or left meanwhile.
        cancellations.queued = cancellations.followers.is_empty() == on;
    }

    /// A subscription the server refused: the followers still joining `keys` get
    /// `error`, the others are told their subscription ended. The keys are subscribed
    /// again only for a new follower.
    pub(crate) fn refused(&self, keys: &[String], error: &dyn Fn() -> Error) {
        let mut table = self.table();
        for key in keys {
            if let Some(followed) = table.keys.get_mut(key)
                && followed.on_server == OnServer::Subscribing
            {
                followed.on_server = OnServer::Off;
                followed.refuse(error);
                followed.lapse();
            }
        }
    }

    /// The server refused to subscribe to cancellations: their joining followers get
    /// `error`, the others are told their subscription ended.
    pub(crate) fn cancellations_refused(&self, error: &dyn Fn() -> Error) {
        let mut table = self.table();
        let cancellations = &mut table.cancellations;
        if cancellations.on_server == OnServer::Subscribing {
            cancellations.on_server = OnServer::Off;
            cancellations.refuse(error);
            cancellations.lapse();
        }
    }

    /// The connection to the server was lost. Followers of keys wait, deaf, until their
    /// key is subscribed again on the next connection (every followed key is listed in
    /// the next [`changes`](Self::changes)); followers of cancellations are told at
    /// once; followers still joining get `error`.
    pub(crate) fn disconnected(&self, error: &dyn Fn() -> Error) {
        let mut table = self.table();
        let Table {
            keys,
            cancellations,
            to_subscribe,
            to_unsubscribe,
            ..
        } = &mut *table;
        to_subscribe.clear();
        to_unsubscribe.clear();
        keys.retain(|key, followed| {
            followed.on_server = OnServer::Off;
            followed.queued = false;
            followed.refuse(error);
            followed.deafen();
            followed.requeue(key, to_subscribe, to_unsubscribe);
            !followed.followers.is_empty()
        });
        cancellations.on_server = OnServer::Off;
        cancellations.refuse(error);
        cancellations.lapse();
        cancellations.queued = false;
    }

    /// The registration that makes the server publish events was found gone: every
    /// follower of a key is told it may have missed events.
    pub(crate) fn lapsed(&self) {
        let table = self.table();
        for inbox in table.keys.values().flat_map(|f| &f.followers) {
            inbox.settle(|standing| {
                matches!(standing, Standing::Listening).then_some(Standing::Lapsed)
            });
        }
    }

    /// Whether nothing at all is followed.
    pub(crate) fn is_idle(&self) -> bool {
        let table = self.table();
        table.keys.is_empty() && table.cancellations.followers.is_empty()
    }

    /// Whether any key is followed, or its subscription on the server under way.
    pub(crate) fn follows_any_key(&self) -> bool {
        !self.table().keys.is_empty()
    }

    /// Claims the serving of this table for a new task, unless one serves it: the id
    /// to give [`stop_serving_if_idle`](Self::stop_serving_if_idle) and
    /// [`server_gone`](Self::server_gone).
    pub(crate) fn claim_serving(&self) -> Option<u64> {
        let mut table = self.table();
        if table.server.is_some() {
            return None;
        }
        table.servers_started += 1;
        table.server = Some(table.servers_started);
        Some(table.servers_started)
    }

    /// Ends the serving of task `server` when nothing at all is followed; a follower
    /// that comes later claims serving anew.
    pub(crate) fn stop_serving_if_idle(&self, server: u64) -> bool {
        let mut table = self.table();
        if table.server != Some(server) {
            return true;
        }
        let idle = table.keys.is_empty() && table.cancellations.followers.is_empty();
        if idle {
            table.server = None;
        }
        idle
    }

    /// Task `server` ended (its runtime shut down): its followers are told, and the
    /// next follower claims serving anew.
    pub(crate) fn server_gone(&self, server: u64) {
        if self.table().server != Some(server) {
            return;
        }
        self.disconnected(&|| Error::Closed);
        let mut table = self.table();
        for followed in table.keys.values() {
            followed.lapse();
        }
        table.server = None;
    }

    /// Delivers an event of `key` to its followers; the event is built only if anyone
    /// follows the key.
    pub(crate) fn publish(&self, key: &str, event: impl FnOnce() -> Event) {
        let table = self.table();
        if let Some(followed) = table.keys.get(key) {
            followed.deliver(event());
        }
    }

    /// Whether anyone follows `key`.
    pub(crate) fn is_followed(&self, key: &str) -> bool {
        self.table().keys.contains_key(key)
    }

    /// Delivers a cancellation to the followers of cancellations.
    pub(crate) fn publish_cancellation(&self, cancelled: Cancelled) {
        self.table().cancellations.deliver(cancelled);
    }
}

impl<T: Clone> Followed<T> {
    fn deliver(&self, item: T) {
        if let Some((last, others)) = self.followers.split_last() {
            for inbox in others {
                inbox.deliver(item.clone());
            }
            last.deliver(item);
        }
    }
}

impl<T> Followed<T> {
    /// The server subscribed: joining followers hear from now on; deaf ones (that
    /// heard on a lost connection) are told they may have missed events.
    fn confirm(&self) {
        for inbox in &self.followers {
            inbox.settle(|standing| match standing {
                Standing::Joining => Some(Standing::Listening),
                Standing::Deaf => Some(Standing::Lapsed),
                _ => None,
            });
        }
    }

    fn refuse(&self, error: &dyn Fn() -> Error) {
        for inbox in &self.followers {
            inbox.settle(|standing| {
                matches!(standing, Standing::Joining).then(|| Standing::Refused(Some(error())))
            });
        }
    }

    /// Ends every follower's stream.
    fn lapse(&self) {
        for inbox in &self.followers {
            inbox.settle(|standing| match standing {
                Standing::Joining | Standing::Listening | Standing::Deaf => Some(Standing::Lapsed),
                Standing::Lapsed | Standing::Refused(_) => None,
            });
        }
    }

    fn deafen(&self) {
        for inbox in &self.followers {
            inbox.settle(|standing| {
                matches!(standing, Standing::Listening).then_some(Standing::Deaf)
            });
        }
    }

    /// Lists `key` to be looked at again when its followers no longer match what the
    /// server has.
    fn requeue(
        &mut self,
        key: &str,
        to_subscribe: &mut Vec<String>,
        to_unsubscribe: &mut Vec<String>,
    ) {
        let wanted = !self.followers.is_empty();
        let list = match self.on_server {
            OnServer::Off if wanted => to_subscribe,
            OnServer::On if !wanted => to_unsubscribe,
            _ => return,
        };
        if !self.queued {
            self.queued = true;
            list.push(key.to_owned());
        }
    }
}

mod follower;
#[cfg(test)]
mod tests;
