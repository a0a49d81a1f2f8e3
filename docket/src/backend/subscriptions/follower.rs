//! One follower: its inbox, where it stands, and the stream it reads.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use super::{Subscriptions, Topic};
use crate::error::{Error, Result};

/// What one follower may hold unread before it is told it missed events instead: a
/// follower that stopped reading costs no more than this.
const INBOX_LIMIT: usize = 256;

/// Where a follower stands.
pub(super) enum Standing {
    /// Waiting for the server to subscribe.
    Joining,
    /// Hearing every event.
    Listening,
    /// The connection was lost; its key is subscribed again on the next one.
    Deaf,
    /// It may have missed events: its stream ends.
    Lapsed,
    /// The server could not subscribe: the error, until the follower takes it.
    Refused(Option<Error>),
}

/// What one follower has heard and not yet read.
pub(super) struct Inbox<T> {
    mail: Mutex<Mail<T>>,
}

struct Mail<T> {
    queue: VecDeque<T>,
    standing: Standing,
    waker: Option<Waker>,
}

impl<T> Inbox<T> {
    pub(super) fn new(standing: Standing) -> Self {
        Self {
            mail: Mutex::new(Mail {
                queue: VecDeque::new(),
                standing,
                waker: None,
            }),
        }
    }

    fn mail(&self) -> MutexGuard<'_, Mail<T>> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn deliver(&self, item: T) {
        let mut mail = self.mail();
        if matches!(mail.standing, Standing::Lapsed | Standing::Refused(_)) {
            return;
        }
        if mail.queue.len() >= INBOX_LIMIT {
            // It stopped reading: it reads the record again instead.
            mail.queue = VecDeque::new();
            mail.standing = Standing::Lapsed;
        } else {
            mail.queue.push_back(item);
        }
        if let Some(waker) = mail.waker.take() {
            drop(mail);
            waker.wake();
        }
    }

    /// Moves the follower to the standing `next` gives, if it gives one, and wakes it.
    pub(super) fn settle(&self, next: impl FnOnce(&Standing) -> Option<Standing>) {
        let mut mail = self.mail();
        if let Some(standing) = next(&mail.standing) {
            mail.standing = standing;
            if let Some(waker) = mail.waker.take() {
                drop(mail);
                waker.wake();
            }
        }
    }
}

/// One follower: a stream of what it hears, which ends when it may have missed
/// something (subscribe again, then read the record). Dropping it leaves.
pub(crate) struct Follower<T: Topic> {
    pub(super) subscriptions: Arc<Subscriptions>,
    pub(super) key: Option<String>,
    pub(super) inbox: Arc<Inbox<T>>,
}

impl<T: Topic> Follower<T> {
    /// Waits until the server has subscribed for it: what happens from then on is heard.
    ///
    /// # Errors
    /// The server's (or the connection's) error when it could not subscribe.
    ///
    /// # Cancel safety
    /// Cancel safe: the follower stays as it is.
    pub(crate) async fn joined(&self) -> Result<()> {
        std::future::poll_fn(|cx| {
            let mut mail = self.inbox.mail();
            match &mut mail.standing {
                Standing::Joining => {
                    mail.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
                Standing::Refused(error) => Poll::Ready(Err(error.take().unwrap_or(Error::Closed))),
                Standing::Listening | Standing::Deaf | Standing::Lapsed => Poll::Ready(Ok(())),
            }
        })
        .await
    }
}

impl<T: Topic> Stream for Follower<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut mail = self.inbox.mail();
        if let Some(item) = mail.queue.pop_front() {
            return Poll::Ready(Some(item));
        }
        match mail.standing {
            Standing::Lapsed | Standing::Refused(_) => Poll::Ready(None),
            Standing::Joining | Standing::Listening | Standing::Deaf => {
                if !mail.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    mail.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl<T: Topic> Drop for Follower<T> {
    fn drop(&mut self) {
        self.subscriptions.leave(self.key.as_deref(), &self.inbox);
    }
}
