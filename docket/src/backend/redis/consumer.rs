//! Reading the stream: claims of new messages, renewal of held ones, and the sweep that
//! takes over abandoned ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::Shared;
use super::connection::{Blocking, ensure_group, is_missing_group};
use super::keys::GROUP;
use super::scripts::{Invocation, SCRIPTS, Script};
use super::wire::{Malformed, duration_millis, parse_message, stream_entries, text, text_fields};
use crate::backend::{BoxFuture, Claimed, Consumer, Delivery, EntryId, dead_letter_error};
use crate::error::{Error, Result};
use crate::model::{Message, TaskError, TaskErrorKind};

/// A message as read from the stream: its id and fields.
type Entry = (String, HashMap<String, String>);

/// A message with what its fields say: runnable, or what is malformed.
type Parsed = (String, HashMap<String, String>, Result<Message, Malformed>);

/// One worker's reading end, with its own connection for blocking reads.
pub(super) struct RedisConsumer {
    shared: Arc<Shared>,
    worker: String,
    /// Dropped after an error or a cancelled claim, and re-opened by the next claim.
    blocking: Option<Blocking>,
}

impl RedisConsumer {
    pub(super) async fn open(shared: Arc<Shared>, worker: String) -> Result<Self> {
        let blocking = shared.endpoint.blocking().await?;
        Ok(Self {
            shared,
            worker,
            blocking: Some(blocking),
        })
    }

    /// `XREADGROUP` of up to `max` new messages, waiting up to `block`. A missing group
    /// (Redis restarted) is re-created and the read retried once.
    async fn read(&mut self, max: usize, block: Duration) -> Result<Vec<Entry>> {
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.worker)
            .arg("COUNT")
            .arg(max);
        if !block.is_zero() {
            command.arg("BLOCK").arg(duration_millis(block).max(1));
        }
        command
            .arg("STREAMS")
            .arg(self.shared.keys.stream())
            .arg(">");

        let mut retried = false;
        loop {
            // Held outside `self` while reading: a claim dropped mid-read drops (closes)
            // the connection instead of leaving a blocked read in front of the next one.
            let mut connection = match self.blocking.take() {
                Some(connection) => connection,
                None => self.shared.endpoint.blocking().await?,
            };
            match connection.read::<redis::Value>(&command, block).await {
                Ok(reply) => {
                    self.blocking = Some(connection);
                    return stream_entries(&reply);
                }
                Err(error) if is_missing_group(&error) && !retried => {
                    self.blocking = Some(connection);
                    retried = true;
                    ensure_group(&mut self.shared.connection(), &self.shared.keys).await?;
                }
                // Anything else may have broken the connection: the next claim opens a
                // new one.
                Err(error) => return Err(error.into()),
            }
        }
    }
}

impl Consumer for RedisConsumer {
    /// # Cancel safety
    /// A claim dropped while it waits closes its connection (the next claim opens a new
    /// one). Messages it had already read stay pending for this worker; the redelivery
    /// sweep hands them out again after `redelivery_timeout`.
    fn claim(&mut self, max: usize, block: Duration) -> BoxFuture<'_, Result<Claimed>> {
        Box::pin(async move {
            if max == 0 {
                return Ok(Claimed::default());
            }
            // Read and claimed in one round trip while there is something to read; only
            // an empty stream is waited on, with a blocking read and then claim.lua.
            let taken = take(&self.shared, &self.worker, max).await?;
            if taken.read > 0 || block.is_zero() {
                return Ok(taken.claimed);
            }
            let entries = self.read(max, block).await?;
            claim_entries(&self.shared, &self.worker, entries, false).await
        })
    }
}

/// An invocation of claim.lua or take.lua with the arguments both start with: the
/// stream, the prefix, the worker, the TTL for records that end there, the delivery
/// limit and the error a dead-lettered run ends with.
fn claiming<'a>(script: &'a Script, shared: &Shared, worker: &str) -> Invocation<'a> {
    let mut invocation = script.prepare_invoke();
    invocation
        .key(shared.keys.stream())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(shared.ttl_ms)
        .arg(shared.max_deliveries)
        .arg(dead_letter_error(shared.max_deliveries).to_json());
    invocation
}

/// What [`take`] read and what became of it.
struct Taken {
    /// How many messages it read.
    read: usize,
    claimed: Claimed,
}

/// Reads up to `max` new messages for `worker` and claims them in one script
/// (take.lua), without waiting. The messages it leaves unchecked, and runs it claimed
/// whose message turns out malformed, are judged by claim.lua, which records them
/// FAILED naming what is malformed. A missing group (Redis restarted) is re-created and
/// the read retried once.
async fn take(shared: &Shared, worker: &str, max: usize) -> Result<Taken> {
    let invoke = || {
        let mut invocation = claiming(&SCRIPTS.take, shared, worker);
        invocation.arg(max);
        async move {
            invocation
                .invoke_async::<Value>(&mut shared.connection())
                .await
        }
    };
    let reply = match invoke().await {
        Err(error) if is_missing_group(&error) => {
            ensure_group(&mut shared.connection(), &shared.keys).await?;
            invoke().await?
        }
        reply => reply?,
    };
    let unexpected = || Error::Protocol(format!("take.lua answered {reply:?}"));
    let Value::Array(items) = &reply else {
        return Err(unexpected());
    };
    if items.len() % 3 != 0 {
        return Err(unexpected());
    }
    let mut taken = Taken {
        read: items.len() / 3,
        claimed: Claimed::default(),
    };
    let mut unjudged = Vec::new();
    for item in items.chunks_exact(3) {
        let (Some(id), Some(verdict)) = (text(&item[0]), text(&item[1])) else {
            return Err(unexpected());
        };
        let fields = text_fields(&item[2]);
        let message = parse_message(&fields);
        if verdict == "unchecked" || (verdict == "run" && message.is_err()) {
            unjudged.push((id, fields));
        } else {
            settle(shared, &id, message, &verdict, false, &mut taken.claimed)?;
        }
    }
    if !unjudged.is_empty() {
        let mut judged = claim_entries(shared, worker, unjudged, false).await?;
        taken.claimed.deliveries.append(&mut judged.deliveries);
        taken.claimed.superseded.append(&mut judged.superseded);
    }
    Ok(taken)
}

/// Checks and claims messages for `worker` in one script (claim.lua): runnable ones
/// become deliveries, superseded ones are reported, dead-lettered and malformed ones are
/// recorded FAILED and logged.
async fn claim_entries(
    shared: &Shared,
    worker: &str,
    entries: Vec<Entry>,
    redelivered: bool,
) -> Result<Claimed> {
    if entries.is_empty() {
        return Ok(Claimed::default());
    }
    let parsed: Vec<Parsed> = entries
        .into_iter()
        .map(|(id, fields)| {
            let message = parse_message(&fields);
            (id, fields, message)
        })
        .collect();

    let mut invocation = claiming(&SCRIPTS.claim, shared, worker);
    invocation.arg(parsed.len());
    for (id, fields, message) in &parsed {
        match message {
            Ok(message) => {
                invocation
                    .arg(id)
                    .arg(&message.key)
                    .arg(message.generation)
                    .arg("")
                    .arg("");
            }
            Err(malformed) => {
                tracing::warn!(
                    docket = %shared.keys.prefix(),
                    id = %id,
                    field = malformed.field,
                    "dropping malformed message `{id}`: {malformed}"
                );
                let error = TaskError::new(
                    TaskErrorKind::BadArguments,
                    format!("malformed message `{id}` in the stream: {malformed}"),
                );
                let field = |name: &str| fields.get(name).map_or("", String::as_str);
                invocation
                    .arg(id)
                    .arg(field("key"))
                    .arg(field("generation"))
                    .arg(error.to_json())
                    .arg(field("function"));
            }
        }
    }
    let answers: Vec<String> = invocation.invoke_async(&mut shared.connection()).await?;
    if answers.len() != parsed.len() {
        return Err(Error::Protocol(format!(
            "claim.lua answered {} values for {} messages",
            answers.len(),
            parsed.len()
        )));
    }

    let mut claimed = Claimed::default();
    for ((id, _, message), answer) in parsed.into_iter().zip(answers) {
        settle(shared, &id, message, &answer, redelivered, &mut claimed)?;
    }
    Ok(claimed)
}

/// Adds what became of message `id` (claim.lua's or take.lua's `verdict`) to `claimed`:
/// a run becomes a delivery, a superseded message is reported, a dead-lettered one
/// logged.
///
/// # Errors
/// [`Error::Protocol`] for a verdict the scripts never give for such a message.
fn settle(
    shared: &Shared,
    id: &str,
    message: Result<Message, Malformed>,
    verdict: &str,
    redelivered: bool,
    claimed: &mut Claimed,
) -> Result<()> {
    match (message, verdict) {
        (Ok(message), "run") => claimed.deliveries.push(Delivery {
            id: stream_id(id)?,
            message,
            redelivered,
        }),
        (Ok(message), "superseded") => {
            claimed.superseded.push((message.key, message.function));
        }
        (Ok(message), "dead") => {
            tracing::warn!(
                docket = %shared.keys.prefix(),
                id = %id,
                key = %message.key,
                task = %message.function,
                "dead-lettered `{}` after {} deliveries: recorded FAILED",
                message.key,
                shared.max_deliveries,
            );
        }
        (Err(_), "dropped" | "superseded" | "dead") => {}
        (_, other) => {
            return Err(Error::Protocol(format!(
                "a claim answered `{other}` for message `{id}`"
            )));
        }
    }
    Ok(())
}

/// Resets the idle time of the messages `worker` still holds (renew.lua); returns the
/// ones it lost.
pub(super) async fn renew(
    shared: &Shared,
    worker: &str,
    ids: Vec<EntryId>,
) -> Result<Vec<EntryId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().map(EntryId::to_string).collect();
    let lost: Vec<String> = SCRIPTS
        .renew
        .key(shared.keys.stream())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(ids)
        .invoke_async(&mut shared.connection())
        .await?;
    lost.iter().map(|id| stream_id(id)).collect()
}

/// A stream id Redis gave.
fn stream_id(id: &str) -> Result<EntryId> {
    EntryId::parse(id).ok_or_else(|| Error::Protocol(format!("`{id}` is not a stream id")))
}

/// Sweeps abandoned messages (reclaim.lua) and claims them for `worker` (claim.lua).
pub(super) async fn reclaim(
    shared: &Shared,
    worker: &str,
    idle: Duration,
    limit: usize,
) -> Result<Vec<Delivery>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let taken: Vec<(String, Value)> = SCRIPTS
        .reclaim
        .key(shared.keys.stream())
        .key(shared.keys.redelivery_lock())
        .arg(shared.keys.prefix())
        .arg(worker)
        .arg(duration_millis(idle).max(1))
        .arg(limit)
        .invoke_async(&mut shared.connection())
        .await?;
    let entries = taken
        .into_iter()
        .map(|(id, fields)| (id, text_fields(&fields)))
        .collect();
    let claimed = claim_entries(shared, worker, entries, true).await?;
    for (key, function) in &claimed.superseded {
        tracing::debug!(
            docket = %shared.keys.prefix(),
            key = %key,
            task = %function,
            "an abandoned message was superseded meanwhile; acknowledged"
        );
    }
    Ok(claimed.deliveries)
}
