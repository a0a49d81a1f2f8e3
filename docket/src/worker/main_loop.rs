//! The main loop: claims deliveries and hands them to runs, within the concurrency;
//! sweeps abandoned deliveries; notices when a draining worker is done; drains on stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Mode, Shared, finisher, loops, run};
use crate::backend::{Claimed, Consumer, Delivery};
use crate::error::{Error, Result};

/// The longest a draining worker waits for its last runs before it looks again whether
/// anything is left (`run_until_finished`, `run_at_most`).
const SETTLE_WAIT: Duration = Duration::from_millis(20);

/// Claims deliveries and hands them to runs, within the concurrency.
pub(super) struct MainLoop {
    shared: Arc<Shared>,
    mode: Mode,
    slots: Arc<Semaphore>,
    runs: JoinSet<run::Ran>,
    finisher: finisher::Finisher,
    consumer: Option<Box<dyn Consumer>>,
    /// `run_at_most`: runs started per limited key, shared with the runs.
    limits: Option<Arc<run::RunLimits>>,
    backoff: loops::Backoff,
    next_sweep: tokio::time::Instant,
    /// The last claim got nothing at all.
    looked_empty: bool,
    /// A draining worker's last look found tasks queued or running elsewhere: their
    /// ends may empty the docket any moment.
    live_elsewhere: bool,
}

impl MainLoop {
    pub(super) fn new(shared: Arc<Shared>, mode: Mode) -> Self {
        let limits = match &mode {
            Mode::AtMost(limits) => Some(Arc::new(run::RunLimits::new(limits.clone()))),
            _ => None,
        };
        let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
        let finisher = finisher::Finisher::spawn(shared.clone());
        let backoff = loops::Backoff::new(&shared);
        Self {
            shared,
            mode,
            slots,
            runs: JoinSet::new(),
            finisher,
            consumer: None,
            limits,
            backoff,
            looked_empty: false,
            live_elsewhere: false,
            next_sweep: tokio::time::Instant::now(),
        }
    }

    fn sweep_interval(&self) -> Duration {
        (self.shared.settings.redelivery_timeout / 4)
            .clamp(Duration::from_millis(25), Duration::from_secs(30))
    }

    pub(super) async fn run(mut self) -> Result<()> {
        let mut stopping = self.shared.stopping.subscribe();
        loop {
            self.reap_finished().await;
            if *stopping.borrow_and_update() {
                break;
            }
            // Wait for a free slot (or a stop request) before claiming.
            let first = tokio::select! {
                permit = self.slots.clone().acquire_owned() => permit.map_err(|_| Error::Closed)?,
                _ = stopping.changed() => continue,
                Some(ran) = self.runs.join_next() => { self.account(ran).await; continue; }
            };
            let mut permits = vec![first];
            while let Ok(permit) = self.slots.clone().try_acquire_owned() {
                permits.push(permit);
            }
            match self.claim(permits.len()).await {
                Ok(claimed) => {
                    self.shared.mark_ok();
                    self.backoff.succeeded();
                    let idle = claimed.deliveries.is_empty();
                    let ran_dry = !idle && claimed.deliveries.len() < permits.len();
                    self.looked_empty = idle;
                    for delivery in claimed.deliveries {
                        let Some(permit) = permits.pop() else { break };
                        self.start(delivery, permit);
                    }
                    drop(permits);
                    // Draining (not `run_forever`): nothing read, or the stream ran dry.
                    // Rather than block on it for a whole check interval, wait a little
                    // (20 ms at most) for what runs here to end and be written, and stop
                    // as soon as nothing is left anywhere.
                    let draining = self.mode != Mode::Forever;
                    let done = if draining && idle {
                        self.nothing_left().await
                    } else if draining && ran_dry {
                        self.settled().await && self.nothing_left().await
                    } else {
                        false
                    };
                    if done {
                        break;
                    }
                }
                Err(error) => {
                    drop(permits);
                    self.disrupted(&error).await;
                }
            }
        }
        self.drain().await;
        Ok(())
    }

    /// Claims new deliveries and, when it is time, sweeps abandoned ones.
    async fn claim(&mut self, free: usize) -> Result<Claimed> {
        // Runs of this worker still going (the slots neither free nor held for this
        // claim), or whose end is still being written.
        let in_flight = !self.runs.is_empty()
            || self.slots.available_permits() + free < self.shared.settings.concurrency
            || self.finisher.unwritten();
        let shared = self.shared.clone();
        let backend = shared.docket.backend();
        let mut claimed = Claimed::default();
        if tokio::time::Instant::now() >= self.next_sweep {
            self.next_sweep = tokio::time::Instant::now() + self.sweep_interval();
            claimed.deliveries = backend
                .reclaim(shared.info.name(), shared.settings.redelivery_timeout, free)
                .await?;
            for delivery in &claimed.deliveries {
                tracing::warn!(
                    docket = %shared.docket.name(),
                    worker = %shared.info.name(),
                    key = %delivery.message.key,
                    task = %delivery.message.function,
                    attempt = delivery.message.attempt,
                    "redelivering a task whose worker stopped renewing it"
                );
            }
        }
        let free = free - claimed.deliveries.len();
        if free == 0 {
            return Ok(claimed);
        }
        if self.consumer.is_none() {
            self.consumer = Some(backend.consumer(shared.info.name()).await?);
        }
        let consumer = self.consumer.as_mut().ok_or(Error::Closed)?;
        let draining = self.mode != Mode::Forever;
        let block = if !claimed.deliveries.is_empty() {
            Duration::ZERO
        } else if draining && (in_flight || self.live_elsewhere) {
            // The last runs, here or on other workers, may end any moment, and then the
            // docket may be empty: look again soon rather than after a whole check
            // interval.
            shared.settings.minimum_check_interval.min(SETTLE_WAIT)
        } else if draining && !self.looked_empty {
            // Nothing runs here and the last read was not empty: look without waiting,
            // as the docket may be done (the caller then checks).
            Duration::ZERO
        } else {
            shared.settings.minimum_check_interval
        };
        match consumer.claim(free, block).await {
            Ok(mut fresh) => {
                for (key, function) in &fresh.superseded {
                    tracing::debug!(key = %key, task = %function, "skipped a superseded message");
                }
                claimed.deliveries.append(&mut fresh.deliveries);
                Ok(claimed)
            }
            Err(error) => {
                // The reading connection is suspect: open a new one next time.
                self.consumer = None;
                if claimed.deliveries.is_empty() {
                    Err(error)
                } else {
                    Ok(claimed)
                }
            }
        }
    }

    fn start(&mut self, delivery: Delivery, permit: tokio::sync::OwnedSemaphorePermit) {
        let shared = self.shared.clone();
        let finisher = self.finisher.sender();
        let limits = self.limits.clone();
        self.runs
            .spawn(run::execute(shared, delivery, finisher, permit, limits));
    }

    async fn reap_finished(&mut self) {
        while let Some(ran) = self.runs.try_join_next() {
            self.account(ran).await;
        }
    }

    async fn account(&mut self, ran: std::result::Result<run::Ran, tokio::task::JoinError>) {
        // A key that used up its runs has its next copy cancelled, so that the docket
        // empties and the worker returns.
        if let Ok(run::Ran { used_up: Some(key) }) = ran
            && let Err(error) = self.shared.docket.cancel(&key).await
        {
            tracing::warn!(key = %key, %error, "could not stop a key at its run limit");
        }
    }

    /// Waits, briefly, until every slot is free, the last batch of ends is written, and
    /// every run's task has returned: every run started here has ended and its end is
    /// written. False when the wait ran out first; claiming then goes on as before (a
    /// run still going, a child it queued meanwhile, are not held up for long).
    async fn settled(&mut self) -> bool {
        let all = u32::try_from(self.shared.settings.concurrency).unwrap_or(u32::MAX);
        let interval = self.shared.settings.minimum_check_interval.min(SETTLE_WAIT);
        let slots = self.slots.clone();
        let all_written = self.finisher.all_written();
        let runs = &mut self.runs;
        let mut ended = Vec::new();
        let settled = tokio::time::timeout(interval, async {
            // Every permit first: then no end is left to join a batch, and the last
            // batch is the one being written.
            let free = slots.acquire_many(all).await.is_ok();
            all_written.await;
            // A run hands its slot to the finisher just before its task returns: wait for
            // those returns too, or the worker would not yet count as finished.
            while let Some(ran) = runs.join_next().await {
                ended.push(ran);
            }
            free
        })
        .await;
        // Accounted outside the wait, so that running out of time never cuts one short.
        for ran in ended {
            self.account(ran).await;
        }
        matches!(settled, Ok(true))
    }

    /// Whether a draining worker is done ([`finished`](Self::finished)); a backend error
    /// counts as not done, after the usual reconnection pause.
    async fn nothing_left(&mut self) -> bool {
        match self.finished().await {
            Ok(done) => done,
            Err(error) => {
                self.disrupted(&error).await;
                false
            }
        }
    }

    /// Nothing is running here, and nothing is live in the docket.
    async fn finished(&mut self) -> Result<bool> {
        self.reap_finished().await;
        // A permit still taken belongs to a run, or to an end waiting for its batch;
        // asked first, as an end trades its permit for a writing one (see
        // `Finisher::unwritten`).
        let idle = self.slots.available_permits() == self.shared.settings.concurrency
            && !self.finisher.unwritten();
        if !self.runs.is_empty() || !idle {
            return Ok(false);
        }
        let counts = self.shared.docket.backend().live_counts().await?;
        self.live_elsewhere = counts.queued + counts.running > 0;
        Ok(counts.is_empty())
    }

    async fn disrupted(&mut self, error: &Error) {
        self.shared.mark_lost("claiming tasks", error);
        loops::pause(&self.shared, self.backoff.failed()).await;
    }

    /// Lets running tasks finish, up to the drain timeout; the rest stay pending for
    /// redelivery.
    async fn drain(mut self) {
        let deadline = tokio::time::Instant::now() + self.shared.settings.drain_timeout;
        while !self.runs.is_empty() {
            match tokio::time::timeout_at(deadline, self.runs.join_next()).await {
                Ok(Some(ran)) => self.account(ran).await,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        worker = %self.shared.info.name(),
                        left = self.runs.len(),
                        "drain timeout: leaving unfinished tasks for redelivery"
                    );
                    self.runs.abort_all();
                    break;
                }
            }
        }
        // Finishes already handed over get a moment even when the drain ran out.
        let grace = tokio::time::Instant::now() + Duration::from_secs(1);
        self.finisher.close(deadline.max(grace)).await;
    }
}
