//! Admission control on Redis: concurrency slots, cooldowns and rate limits
//! (admission.lua), and waking the waiters of slots whose holders died (wake.lua).

use std::time::Duration;

use super::Shared;
use super::scripts::{SCRIPTS, load_into};
use super::wire::duration_millis;
use crate::backend::AdmissionCheck;
use crate::error::Result;

pub(super) async fn check(shared: &Shared, check: AdmissionCheck) -> Result<Option<Duration>> {
    let keys = &shared.keys;
    let mut invocation = SCRIPTS.admission.prepare_invoke();
    match &check {
        AdmissionCheck::Slot { slot, key, lease } => invocation
            .key(keys.admission("concurrency", &slot.scope))
            .arg(keys.prefix())
            .arg("slot")
            .arg(key)
            .arg(slot.max)
            .arg(duration_millis(*lease).max(1)),
        AdmissionCheck::Cooldown { scope, window } => invocation
            .key(keys.admission("cooldown", scope))
            .arg(keys.prefix())
            .arg("cooldown")
            .arg(duration_millis(*window).max(1)),
        AdmissionCheck::Rate {
            scope,
            member,
            limit,
            per,
        } => invocation
            .key(keys.admission("rate", scope))
            .arg(keys.prefix())
            .arg("rate")
            .arg(member)
            .arg(limit)
            .arg(duration_millis(*per).max(1)),
    };
    let answer: i64 = invocation.invoke_async(&mut shared.connection()).await?;
    Ok(match check {
        AdmissionCheck::Slot { .. } | AdmissionCheck::Cooldown { .. } => {
            (answer == 0).then_some(Duration::ZERO)
        }
        AdmissionCheck::Rate { .. } => {
            (answer > 0).then(|| Duration::from_millis(u64::try_from(answer).unwrap_or(0)))
        }
    })
}

/// Extends the slots these runs hold, by the server clock (one script per slot, in one
/// round trip).
pub(super) async fn renew(
    shared: &Shared,
    held: Vec<(crate::backend::Slot, String)>,
    lease: Duration,
) -> Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    // One round trip: SCRIPT LOAD (idempotent), then EVALSHA per slot.
    let mut pipeline = redis::pipe();
    load_into(&mut pipeline, &SCRIPTS.admission);
    for (slot, key) in held {
        let mut invocation = SCRIPTS.admission.prepare_invoke();
        invocation
            .key(shared.keys.admission("concurrency", &slot.scope))
            .arg(shared.keys.prefix())
            .arg("renew")
            .arg(key)
            .arg(duration_millis(lease).max(1));
        invocation.add_to(&mut pipeline);
    }
    let () = pipeline.query_async(&mut shared.connection()).await?;
    Ok(())
}

pub(super) async fn wake(shared: &Shared, lease: Duration) -> Result<usize> {
    Ok(SCRIPTS
        .wake
        .key(shared.keys.stream())
        .key(shared.keys.queue())
        .arg(shared.keys.prefix())
        .arg(duration_millis(lease).max(1))
        .invoke_async(&mut shared.connection())
        .await?)
}
