//! The strikes stream on Redis: appends through strike.lua, reads with `XREAD` on a
//! dedicated connection (a blocking read never shares the command connection).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use serde_json::Value as Json;

use super::scripts::SCRIPTS;
use super::wire::{duration_millis, stream_entries};
use super::{Shared, connection};
use crate::backend::{BoxFuture, EntryId, StrikeEntry, StrikeReader};
use crate::error::{Error, Result};
use crate::model::{Instruction, Operator, Strike};

/// Appends one instruction (strike.lua); returns its entry.
pub(super) async fn append(
    shared: &Shared,
    instruction: &Instruction,
    compact_above: usize,
) -> Result<EntryId> {
    let mut invocation = SCRIPTS.strike.prepare_invoke();
    invocation
        .key(shared.keys.strikes())
        .arg(shared.keys.prefix())
        .arg(compact_above);
    for (field, value) in to_fields(instruction) {
        invocation.arg(field).arg(value);
    }
    let id: String = invocation.invoke_async(&mut shared.connection()).await?;
    entry_id(&id)
}

fn entry_id(id: &str) -> Result<EntryId> {
    EntryId::parse(id).ok_or_else(|| Error::Protocol(format!("`{id}` is not a stream id")))
}

/// An instruction's stream fields: `action`, then the strike's.
fn to_fields(instruction: &Instruction) -> Vec<(&'static str, String)> {
    let (action, strike) = match instruction {
        Instruction::Strike(strike) => ("strike", Some(strike)),
        Instruction::Restore(strike) => ("restore", Some(strike)),
        Instruction::Reset => ("reset", None),
    };
    let mut fields = vec![("action", action.to_owned())];
    if let Some(strike) = strike {
        let [task, parameter, operator, value] = strike.fields();
        fields.extend([
            ("task", task),
            ("parameter", parameter),
            ("operator", operator),
            ("value", value),
        ]);
    }
    fields
}

/// Reads an entry back.
///
/// # Errors
/// A message naming the malformed field.
fn from_fields(fields: &HashMap<String, String>) -> std::result::Result<Instruction, String> {
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let action = field("action");
    if action == "reset" {
        return Ok(Instruction::Reset);
    }
    let task = Some(field("task"))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let condition = if field("parameter").is_empty() {
        None
    } else {
        let operator: Operator = field("operator").parse()?;
        let value: Json = serde_json::from_str(field("value"))
            .map_err(|e| format!("strike value `{}` is not JSON: {e}", field("value")))?;
        Some((field("parameter").to_owned(), operator, value))
    };
    let strike = Strike::from_parts(task, condition);
    match action {
        "strike" => Ok(Instruction::Strike(strike)),
        "restore" => Ok(Instruction::Restore(strike)),
        other => Err(format!("unknown strike action `{other}`")),
    }
}

pub(super) struct RedisStrikeReader {
    connection: connection::Blocking,
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
    fn read(
        &mut self,
        after: Option<EntryId>,
        block: Option<Duration>,
        count: usize,
    ) -> BoxFuture<'_, Result<Vec<StrikeEntry>>> {
        Box::pin(async move {
            let mut command = redis::cmd("XREAD");
            command.arg("COUNT").arg(count);
            if let Some(block) = block {
                command.arg("BLOCK").arg(duration_millis(block).max(1));
            }
            command
                .arg("STREAMS")
                .arg(&self.stream)
                .arg(after.map_or_else(|| "0".to_owned(), |id| id.to_string()));
            let reply: Value = self
                .connection
                .read(&command, block.unwrap_or_default())
                .await?;
            stream_entries(&reply)?
                .into_iter()
                .map(|(id, fields)| Ok((entry_id(&id)?, from_fields(&fields))))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn round_trip(instruction: &Instruction) -> Instruction {
        let fields: HashMap<String, String> = to_fields(instruction)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        from_fields(&fields).unwrap()
    }

    #[test]
    fn instructions_round_trip() {
        for instruction in [
            Instruction::Strike(Strike::task("t")),
            Instruction::Restore(
                Strike::when("n", Operator::Between, json!([1, 10])).for_task("t"),
            ),
            Instruction::Strike(Strike::when("who", Operator::NotEqual, "x\"y")),
            Instruction::Reset,
        ] {
            assert_eq!(round_trip(&instruction), instruction);
        }
    }
}
