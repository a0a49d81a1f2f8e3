//! The strikes stream on Redis: appends through strike.lua, reads with `XREAD` on a
//! dedicated connection (a blocking read never shares the command connection).

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::scripts::SCRIPTS;
use super::wire::{duration_millis, stream_entries};
use super::{Shared, connection};
use crate::backend::{BoxFuture, StrikeEntry, StrikeReader};
use crate::error::Result;
use crate::strikes::Instruction;

/// Appends one instruction (strike.lua); returns its entry id.
pub(super) async fn append(
    shared: &Shared,
    instruction: &Instruction,
    compact_above: usize,
) -> Result<String> {
    let mut invocation = SCRIPTS.strike.prepare_invoke();
    invocation
        .key(shared.keys.strikes())
        .arg(shared.keys.prefix())
        .arg(compact_above);
    for (field, value) in instruction.to_fields() {
        invocation.arg(field).arg(value);
    }
    Ok(invocation.invoke_async(&mut shared.connection()).await?)
}

pub(super) struct RedisStrikeReader {
    connection: connection::Connection,
    stream: String,
}

impl RedisStrikeReader {
    pub(super) async fn open(shared: &Arc<Shared>) -> Result<Self> {
        Ok(Self {
            connection: shared.endpoint.blocking().await?,
            stream: shared.keys.strikes(),
        })
    }
}

impl StrikeReader for RedisStrikeReader {
    fn read<'a>(
        &'a mut self,
        after: Option<&'a str>,
        block: Option<Duration>,
        count: usize,
    ) -> BoxFuture<'a, Result<Vec<StrikeEntry>>> {
        Box::pin(async move {
            let mut command = redis::cmd("XREAD");
            command.arg("COUNT").arg(count);
            if let Some(block) = block {
                command.arg("BLOCK").arg(duration_millis(block).max(1));
            }
            command
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(after.unwrap_or("0"));
            let reply: Value = command.query_async(&mut self.connection).await?;
            Ok(stream_entries(&reply)?
                .into_iter()
                .map(|(id, fields)| (id, Instruction::from_fields(&fields)))
                .collect())
        })
    }
}
