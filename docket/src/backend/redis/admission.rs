//! Admission on Redis: concurrency slots, cooldowns and rate limits (admission.lua), and
//! waking the waiters of slots whose holders died (wake.lua).

use std::time::Duration;

use super::Shared;
use super::scripts::{SCRIPTS, load_into};
use super::wire::duration_millis;
use crate::backend::{AdmissionRule, Slot};
use crate::error::Result;

/// Decides a rule in one script: `None` admits; `Some(wait)` refuses.
pub(super) async fn admit(shared: &Shared, rule: AdmissionRule) -> Result<Option<Duration>> {
    let keys = &shared.keys;
    let mut invocation = SCRIPTS.admission.prepare_invoke();
    match &rule {
        AdmissionRule::Concurrency { slot, key, lease } => invocation
            .key(keys.admission("concurrency", &slot.scope))
            .arg(keys.prefix())
            .arg("concurrency")
            .arg(key)
            .arg(slot.max)
            .arg(duration_millis(*lease).max(1)),
        AdmissionRule::Cooldown { scope, window } => invocation
            .key(keys.admission("cooldown", scope))
            .arg(keys.prefix())
            .arg("cooldown")
            .arg(duration_millis(*window).max(1)),
        AdmissionRule::RateLimit {
            scope,
            member,
            limit,
            per,
        } => invocation
            .key(keys.admission("rate", scope))
            .arg(keys.prefix())
            .arg("rate_limit")
            .arg(member)
            .arg(limit)
            .arg(duration_millis(*per).max(1)),
    };
    let answer: i64 = invocation.invoke_async(&mut shared.connection()).await?;
    Ok(match rule {
        AdmissionRule::Concurrency { .. } | AdmissionRule::Cooldown { .. } => {
            (answer == 0).then_some(Duration::ZERO)
        }
        AdmissionRule::RateLimit { .. } => {
            (answer > 0).then(|| Duration::from_millis(u64::try_from(answer).unwrap_or(0)))
        }
    })
}

/// Extends the slots these runs hold, by the server clock (one script per slot, in one
/// round trip).
pub(super) async fn renew(
    shared: &Shared,
    held: Vec<(Slot, String)>,
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
