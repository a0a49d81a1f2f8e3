//! Sentinels: which node is the master now, whether the node they name really is one,
//! and word of each switch (`+switch-master`) as soon as they make it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};

use super::dial::{Dialer, Sentinels};

/// The master's address as the Sentinels give it now, asking each in turn (the one
/// that answered last first). A master other than the one known before is a switch.
///
/// # Errors
/// An I/O error when no Sentinel answers (worth waiting for); a
/// `MasterNameNotFoundBySentinel` error when those that answer do not know the group.
pub(super) async fn resolve(sentinels: &Sentinels, dialer: &Dialer) -> RedisResult<(String, u16)> {
    let count = sentinels.infos.len();
    let first = sentinels.preferred.load(Ordering::Relaxed);
    let mut problems = Vec::with_capacity(count);
    let mut unknown = 0;
    for offset in 0..count {
        let index = (first + offset) % count;
        let info = &sentinels.infos[index];
        match ask(dialer, info, &sentinels.target.master).await {
            Ok(Some(address)) => {
                sentinels.preferred.store(index, Ordering::Relaxed);
                note_master(sentinels, dialer, &address);
                return Ok(address);
            }
            Ok(None) => {
                unknown += 1;
                problems.push(format!("{} does not monitor it", info.addr()));
            }
            Err(error) => problems.push(format!("{}: {error}", info.addr())),
        }
    }
    let detail = format!(
        "no Sentinel named the master of `{}` ({})",
        sentinels.target.master,
        problems.join("; ")
    );
    if unknown == count {
        Err(RedisError::from((
            ErrorKind::MasterNameNotFoundBySentinel,
            "unknown master group",
            detail,
        )))
    } else {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            detail,
        )))
    }
}

/// One Sentinel's answer to `SENTINEL GET-MASTER-ADDR-BY-NAME`.
async fn ask(
    dialer: &Dialer,
    info: &ConnectionInfo,
    master: &str,
) -> RedisResult<Option<(String, u16)>> {
    let options = &dialer.options;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.response_timeout));
    let mut connection = dialer
        .client_for(info.clone())?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let reply: Option<(String, String)> = redis::cmd("SENTINEL")
        .arg("GET-MASTER-ADDR-BY-NAME")
        .arg(master)
        .query_async(&mut connection)
        .await?;
    let Some((host, port)) = reply else {
        return Ok(None);
    };
    let port = port.parse().map_err(|_| {
        RedisError::from((
            ErrorKind::Parse,
            "a Sentinel gave a master's port that is not a number",
            port.clone(),
        ))
    })?;
    Ok(Some((host, port)))
}

/// Records the master's address; a different one than before is a switch.
fn note_master(sentinels: &Sentinels, dialer: &Dialer, address: &(String, u16)) {
    let previous = sentinels
        .master
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .replace(address.clone());
    if previous.is_some_and(|previous| previous != *address) {
        tracing::info!(
            url = %dialer.shown,
            master = %sentinels.target.master,
            address = %format!("{}:{}", address.0, address.1),
            "the Sentinels moved the master; reconnecting to it"
        );
        dialer.reconnect_all();
    }
}

/// Checks that the node the Sentinels named is a master: right after a switch it may
/// still be a replica, or a demoted master they have not caught up with. A user who may
/// not run `ROLE` skips the check: a replica's `READONLY` still sends it back to the
/// Sentinels.
///
/// # Errors
/// An I/O error (worth waiting for) when it is not the master.
pub(super) async fn check_master(
    connection: &mut MultiplexedConnection,
    sentinels: &Sentinels,
) -> RedisResult<()> {
    let role: Vec<Value> = match redis::cmd("ROLE").query_async(connection).await {
        Ok(role) => role,
        Err(error) if error.code() == Some("NOPERM") => {
            tracing::debug!(%error, "cannot ask the master its role; trusting the Sentinels");
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    let role = match role.first() {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(text)) => text.clone(),
        _ => String::new(),
    };
    if role == "master" {
        return Ok(());
    }
    Err(RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        format!(
            "the Sentinels name a node the master of `{}`, but it says it is a {} (a failover \
             is under way)",
            sentinels.target.master,
            if role.is_empty() {
                "node of unknown role"
            } else {
                &role
            }
        ),
    )))
}

/// Listens to every Sentinel (the one leading a failover announces its start only on
/// its own channels) until aborted: a failover of this group starting holds writes to
/// its master, and its switch moves every connection to the new one.
pub(super) async fn follow_switches(dialer: Arc<Dialer>) {
    let Some(sentinels) = dialer.sentinels() else {
        return;
    };
    let listeners = sentinels
        .infos
        .iter()
        .map(|info| listen_to_one(&dialer, sentinels, info));
    futures::future::join_all(listeners).await;
}

/// Follows one Sentinel's announcements, subscribing again after each disruption.
async fn listen_to_one(dialer: &Dialer, sentinels: &Sentinels, info: &ConnectionInfo) {
    let options = &dialer.options;
    let mut pause = options.reconnect_min_delay;
    loop {
        match listen(dialer, sentinels, info).await {
            Ok(()) => pause = options.reconnect_min_delay,
            Err(error) => {
                tracing::debug!(url = %dialer.shown, sentinel = %info.addr(), %error, "not hearing a Sentinel; trying again");
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(options.reconnect_max_delay.max(Duration::from_millis(100)));
    }
}

/// What a Sentinel announces about a master group, and what docket does about it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Announcement {
    /// `+try-failover`: a Sentinel starts failing over the master at this address.
    FailoverStarted(String, u16),
    /// `-failover-abort-*`: it gave up; the master stays.
    FailoverAborted,
    /// `+switch-master`: the master is now at this address.
    Switched(String, u16),
}

/// Reads a Sentinel's message on `channel` about group `group`, if it is one docket
/// acts on.
fn announcement(channel: &str, payload: &str, group: &str) -> Option<Announcement> {
    let fields: Vec<&str> = payload.split_whitespace().collect();
    match channel {
        // `<group> <old-ip> <old-port> <new-ip> <new-port>`
        "+switch-master" => match fields[..] {
            [name, _, _, host, port] if name == group => {
                Some(Announcement::Switched(host.to_owned(), port.parse().ok()?))
            }
            _ => None,
        },
        // `master <group> <ip> <port>`
        "+try-failover" => match fields[..] {
            ["master", name, host, port, ..] if name == group => Some(
                Announcement::FailoverStarted(host.to_owned(), port.parse().ok()?),
            ),
            _ => None,
        },
        abort if abort.starts_with("-failover-abort") => match fields[..] {
            ["master", name, ..] if name == group => Some(Announcement::FailoverAborted),
            _ => None,
        },
        _ => None,
    }
}

/// Subscribes to one Sentinel's announcements until its connection ends.
async fn listen(dialer: &Dialer, sentinels: &Sentinels, info: &ConnectionInfo) -> RedisResult<()> {
    let connecting = async {
        let mut pubsub = dialer.client_for(info.clone())?.get_async_pubsub().await?;
        pubsub
            .subscribe(&["+switch-master", "+try-failover"])
            .await?;
        pubsub.psubscribe("-failover-abort*").await?;
        Ok::<_, RedisError>(pubsub)
    };
    let pubsub = tokio::time::timeout(dialer.options.connect_timeout, connecting)
        .await
        .map_err(|_| {
            RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out subscribing to a Sentinel",
            ))
        })??;
    // A switch made while nobody listened: the master now differs from the last known.
    resolve(sentinels, dialer).await?;
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        match announcement(
            message.get_channel_name(),
            &payload,
            &sentinels.target.master,
        ) {
            Some(Announcement::FailoverStarted(host, port)) => {
                tracing::info!(
                    url = %dialer.shown,
                    master = %sentinels.target.master,
                    "the Sentinels are failing the master over; holding writes until it is done"
                );
                dialer.hold_writes((host, port));
            }
            Some(Announcement::FailoverAborted) => dialer.release_writes(),
            Some(Announcement::Switched(host, port)) => {
                note_master(sentinels, dialer, &(host, port));
                dialer.release_writes();
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_about_the_group_are_read_and_others_ignored() {
        let read = |channel, payload| announcement(channel, payload, "mymaster");
        assert_eq!(
            read("+switch-master", "mymaster 127.0.0.1 6379 127.0.0.1 6380"),
            Some(Announcement::Switched("127.0.0.1".into(), 6380))
        );
        assert_eq!(read("+switch-master", "other 1.1.1.1 1 2.2.2.2 2"), None);
        assert_eq!(
            read("+try-failover", "master mymaster 127.0.0.1 6379"),
            Some(Announcement::FailoverStarted("127.0.0.1".into(), 6379))
        );
        assert_eq!(read("+try-failover", "master other 127.0.0.1 6379"), None);
        assert_eq!(
            read(
                "-failover-abort-no-good-slave",
                "master mymaster 127.0.0.1 6379"
            ),
            Some(Announcement::FailoverAborted)
        );
        assert_eq!(read("+switch-master", "garbled"), None);
    }
}
