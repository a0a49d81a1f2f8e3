//! The chaos ticker: random Redis restarts and worker kills, and what they did.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::bed::Bed;
use crate::rng::Rng;
use crate::{KILL_PERCENT, REDIS_PERCENT, TICK, say, wide};

/// What the chaos ticker did.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub(crate) ticks: u64,
    pub(crate) redis_restarts: u64,
    pub(crate) worker_kills: u64,
    /// Faults the draws did not produce, injected at the end so that every run has one.
    pub(crate) forced: Vec<&'static str>,
    /// Workers that exited although nobody killed them (then started again).
    pub(crate) unexpected_exits: Vec<String>,
    pub(crate) longest_outage: Duration,
    pub(crate) errors: Vec<String>,
}

impl Faults {
    /// Starts a Redis restart in the background.
    fn begin_restart(
        &mut self,
        bed: &Arc<Bed>,
        started: Instant,
    ) -> JoinHandle<Result<Duration, String>> {
        self.redis_restarts += 1;
        say(started, "SIGKILL redis-server; starting it again");
        tokio::spawn(bed.clone().restart_redis())
    }

    /// Waits for a restart begun with [`Faults::begin_restart`] and notes how it went.
    async fn settle(&mut self, restart: JoinHandle<Result<Duration, String>>, started: Instant) {
        match restart.await {
            Ok(Ok(outage)) => {
                self.longest_outage = self.longest_outage.max(outage);
                say(
                    started,
                    &format!("redis-server answers PING again after {outage:?}"),
                );
            }
            Ok(Err(error)) => self.errors.push(error),
            Err(error) => self
                .errors
                .push(format!("the Redis restart failed: {error}")),
        }
    }

    /// SIGKILLs the worker of `slot` and starts it again.
    fn kill(&mut self, bed: &Bed, slot: usize, started: Instant) {
        self.worker_kills += 1;
        match bed.kill_worker(slot) {
            Ok((killed, new)) => say(started, &format!("SIGKILL {killed}; started {new}")),
            Err(error) => self.errors.push(error),
        }
    }

    /// Notes (and replaces) workers that exited by themselves.
    pub(crate) fn watch_exits(&mut self, bed: &Bed, started: Instant) {
        match bed.respawn_exited() {
            Ok(exits) => {
                for exit in exits {
                    say(started, &format!("unexpected: {exit}; started again"));
                    self.unexpected_exits.push(exit);
                }
            }
            Err(error) => self.errors.push(error),
        }
    }
}

/// The chaos ticker: every 250 ms, a 2% chance of a Redis restart (at most one at a
/// time) and an 8% chance of a worker SIGKILL, until told to stop. A run whose draws
/// gave no Redis restart or no worker kill gets one of each at the end.
pub(crate) async fn chaos(
    bed: Arc<Bed>,
    seed: u64,
    workers: usize,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Faults {
    let mut rng = Rng::new(seed);
    let mut faults = Faults::default();
    let mut restart: Option<JoinHandle<Result<Duration, String>>> = None;
    let mut ticker = tokio::time::interval_at(Instant::now() + TICK, TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        // Three draws every tick, used or not: the same seed, the same faults.
        let restart_redis = rng.percent(REDIS_PERCENT);
        let kill = rng.percent(KILL_PERCENT);
        let victim = usize::try_from(rng.below(wide(workers))).unwrap_or(0);
        faults.ticks += 1;
        if let Some(done) = restart.take_if(|handle| handle.is_finished()) {
            faults.settle(done, started).await;
        }
        if restart_redis && restart.is_none() {
            restart = Some(faults.begin_restart(&bed, started));
        }
        if kill {
            faults.kill(&bed, victim, started);
        }
        faults.watch_exits(&bed, started);
    }
    if let Some(pending) = restart.take() {
        faults.settle(pending, started).await;
    }
    if faults.redis_restarts == 0 {
        faults.forced.push("redis restart");
        let forced = faults.begin_restart(&bed, started);
        faults.settle(forced, started).await;
    }
    if faults.worker_kills == 0 {
        faults.forced.push("worker kill");
        faults.kill(&bed, 0, started);
    }
    faults
}
