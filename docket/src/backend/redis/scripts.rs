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
}

fn with_prelude(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// The scripts, hashed once per process.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    schedule: with_prelude(include_str!("lua/schedule.lua")),
    claim: with_prelude(include_str!("lua/claim.lua")),
    finish: with_prelude(include_str!("lua/finish.lua")),
    promote: with_prelude(include_str!("lua/promote.lua")),
    renew: with_prelude(include_str!("lua/renew.lua")),
    reclaim: with_prelude(include_str!("lua/reclaim.lua")),
    cancel: with_prelude(include_str!("lua/cancel.lua")),
    progress: with_prelude(include_str!("lua/progress.lua")),
    heartbeat: with_prelude(include_str!("lua/heartbeat.lua")),
    strike: with_prelude(include_str!("lua/strike.lua")),
    admission: with_prelude(include_str!("lua/admission.lua")),
    wake: with_prelude(include_str!("lua/wake.lua")),
    clear: with_prelude(include_str!("lua/clear.lua")),
    counts: with_prelude(include_str!("lua/counts.lua")),
    live: with_prelude(include_str!("lua/live.lua")),
});

/// The prelude followed by `body`, for tests that probe the prelude's helpers.
#[cfg(test)]
pub(super) fn probe(body: &str) -> Script {
    with_prelude(body)
}
