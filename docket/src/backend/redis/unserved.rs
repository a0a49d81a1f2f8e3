//! Calls waiting on Redis for a worker that serves their task (unserved.lua): listed,
//! and given up on after a grace period. A serving worker's heartbeat queues them
//! (heartbeat.lua).

use std::time::SystemTime;

use super::Shared;
use super::scripts::SCRIPTS;
use super::wire::{epoch_millis, from_epoch_millis};
use crate::backend::Unserved;
use crate::error::{Error, Result};
use crate::model::TaskError;

pub(super) async fn list(shared: &Shared) -> Result<Vec<Unserved>> {
    let reply: Vec<(String, usize, u64)> = SCRIPTS
        .unserved
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg("list")
        .invoke_async(&mut shared.connection())
        .await?;
    let mut unserved: Vec<Unserved> = reply
        .into_iter()
        .map(|(task, waiting, since_ms)| Unserved {
            task,
            waiting,
            since: from_epoch_millis(since_ms),
        })
        .collect();
    unserved.sort_by(|a, b| a.task.cmp(&b.task));
    Ok(unserved)
}

pub(super) async fn abandon(
    shared: &Shared,
    task: &str,
    since: SystemTime,
    error: &TaskError,
) -> Result<usize> {
    let abandoned: i64 = SCRIPTS
        .unserved
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg("abandon")
        .arg(task)
        .arg(epoch_millis(since))
        .arg(error.to_json())
        .arg(shared.ttl_ms)
        .invoke_async(&mut shared.connection())
        .await?;
    usize::try_from(abandoned)
        .map_err(|_| Error::Protocol(format!("unserved.lua answered {abandoned}")))
}
