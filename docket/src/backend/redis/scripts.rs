//! The Lua scripts, one per state transition, each prefixed with the shared prelude.
//!
//! `redis::Script` runs them with `EVALSHA` and reloads them on `NOSCRIPT` (after a
//! server restart or `SCRIPT FLUSH`), so they are loaded lazily and never by hand.

use std::sync::LazyLock;

use redis::Script;

const PRELUDE: &str = include_str!("lua/prelude.lua");

/// Every script docket runs on Redis.
pub(super) struct Scripts {
    pub schedule: Script,
    pub claim: Script,
    pub finish: Script,
    pub promote: Script,
    pub renew: Script,
    pub reclaim: Script,
    pub cancel: Script,
    pub progress: Script,
    pub heartbeat: Script,
    pub strike: Script,
    pub admission: Script,
    pub wake: Script,
    pub clear: Script,
    pub counts: Script,
    pub live: Script,
    pub listen: Script,
}

fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// A script of the workers' (or an operator's) that keeps running while Redis is out
/// of memory: finishing work is what frees memory.
fn worker(body: &str) -> Script {
    with_prelude(&format!("continue_when_out_of_memory()\n{body}"))
}

/// The scripts, hashed once per process.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // A producer's script: refused, before it writes anything, while Redis is out of
    // memory under `noeviction` (schedule.lua says when it checks; see the prelude).
    schedule: with_prelude(include_str!("lua/schedule.lua")),
    claim: worker(include_str!("lua/claim.lua")),
    finish: worker(include_str!("lua/finish.lua")),
    promote: worker(include_str!("lua/promote.lua")),
    renew: worker(include_str!("lua/renew.lua")),
    reclaim: worker(include_str!("lua/reclaim.lua")),
    cancel: worker(include_str!("lua/cancel.lua")),
    progress: worker(include_str!("lua/progress.lua")),
    heartbeat: worker(include_str!("lua/heartbeat.lua")),
    strike: worker(include_str!("lua/strike.lua")),
    admission: worker(include_str!("lua/admission.lua")),
    wake: worker(include_str!("lua/wake.lua")),
    clear: worker(include_str!("lua/clear.lua")),
    counts: with_prelude(include_str!("lua/counts.lua")),
    live: with_prelude(include_str!("lua/live.lua")),
    // A waiter still registers while Redis is out of memory (one small member).
    listen: worker(include_str!("lua/listen.lua")),
});

/// The prelude followed by `body`, for tests that probe the prelude's helpers.
#[cfg(test)]
pub(super) fn probe(body: &str) -> Script {
    with_prelude(body)
}
