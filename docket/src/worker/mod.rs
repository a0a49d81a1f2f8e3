//! [`Worker`]: claims tasks from a docket and runs them (SPEC §5).
//!
//! ```
//! # #[docket::task] async fn shout(word: String) -> String { word.to_uppercase() }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! use std::time::Duration;
//! use docket::{Docket, Worker};
//!
//! let docket = Docket::connect("doc-worker", "memory://doc-worker").await?;
//! let execution = docket.add(Shout::new("hi".into())).await?;
//!
//! let worker = Worker::builder(docket)
//!     .name("worker-1")
//!     .concurrency(20)
//!     .redelivery_timeout(Duration::from_secs(60))
//!     .build()?;
//! worker.run_until_finished().await?;
//! assert_eq!(execution.result::<String>().await?, "HI");
//! # Ok(()) }
//! ```

mod builder;
mod finisher;
mod gates;
mod loops;
mod run;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

pub use builder::{Fallback, WorkerBuilder};

use crate::backend::{Claimed, Consumer, Delivery};
use crate::behaviors::Behavior;
use crate::client::Docket;
use crate::error::{Error, Result};
use crate::inject::{WorkerInfo, WorkerValues};
use crate::observe::metrics::Labels;
use crate::task::TaskSet;

/// A worker: runs the tasks it knows, as many at once as its concurrency allows.
///
/// Build one with [`Worker::builder`]; run it with [`run_forever`](Self::run_forever),
/// [`run_until_finished`](Self::run_until_finished) or [`run_at_most`](Self::run_at_most).
pub struct Worker {
    shared: Arc<Shared>,
}

/// What the worker's loops and runs share.
pub(crate) struct Shared {
    pub docket: Docket,
    pub info: WorkerInfo,
    pub settings: Settings,
    pub tasks: TaskSet,
    pub fallback: Option<Fallback>,
    /// The built-in behaviours, then the user's, in order.
    pub behaviors: Vec<Arc<dyn Behavior>>,
    /// `Shared<T>` values: given on the builder, or built on first use.
    pub values: Arc<WorkerValues>,
    /// Metric labels of this worker and each task it knows, by task.
    pub task_labels: HashMap<&'static str, Labels>,
    /// In-flight deliveries: delivery id → key, for renewal and cancellation.
    pub in_flight: Mutex<HashMap<String, InFlight>>,
    /// Cancellations that found no run here, kept a while for a run claimed just before
    /// and registered just after (only touched with `in_flight` locked).
    pub unmatched_cancels: Mutex<loops::UnmatchedCancels>,
    /// Whether the cancellation listener is subscribed: while it is not, a new run
    /// reads its record once to learn of a cancel it could have missed.
    pub listening: AtomicBool,
    /// Set when the worker should stop claiming.
    pub stopping: watch::Sender<bool>,
    pub running: AtomicBool,
    pub disruptions: AtomicU64,
    /// Health: the last backend call succeeded, and when the worker last made progress
    /// (milliseconds since `epoch`).
    pub connected: AtomicBool,
    pub progress_ms: AtomicU64,
    pub epoch: std::time::Instant,
}

impl Shared {
    /// A backend call succeeded: the worker is connected and making progress.
    pub(crate) fn mark_ok(&self) {
        if !self.connected.swap(true, Ordering::Relaxed)
            && self.disruptions.load(Ordering::Relaxed) > 0
        {
            tracing::info!(
                docket.name = %self.docket.name(),
                docket.worker = %self.info.name,
                "connection to the docket restored"
            );
        }
        let since = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.store(since, Ordering::Relaxed);
    }

    /// A backend call failed: count a disruption, and report unhealthy until one works.
    pub(crate) fn mark_lost(&self) {
        self.connected.store(false, Ordering::Relaxed);
        self.disruptions.fetch_add(1, Ordering::Relaxed);
        crate::observe::metrics::count("docket_redis_disruptions", self.labels(None), 1);
    }

    /// Metric labels of this worker (and a task).
    pub(crate) fn labels(&self, task: Option<&str>) -> Labels {
        crate::observe::metrics::labels(self.docket.name(), Some(&self.info.name), task)
    }

    /// Metric labels of this worker and a task, made once for each task it knows.
    pub(crate) fn task_labels(&self, task: &str) -> Cow<'_, Labels> {
        match self.task_labels.get(task) {
            Some(labels) => Cow::Borrowed(labels),
            None => Cow::Owned(self.labels(Some(task))),
        }
    }
}

/// A run in progress.
pub(crate) struct InFlight {
    pub key: String,
    pub generation: u64,
    pub abort: futures::future::AbortHandle,
    /// The concurrency slot the run holds, renewed with its message.
    pub slot: Option<crate::backend::Slot>,
}

/// The worker's tuning, as the production guide names it.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub concurrency: usize,
    pub redelivery_timeout: Duration,
    pub reconnection_delay: Duration,
    pub minimum_check_interval: Duration,
    pub scheduling_resolution: Duration,
    pub schedule_automatic_tasks: bool,
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: u32,
    pub drain_timeout: Duration,
    pub automatic_interval: Duration,
}

/// A worker's state at one moment (see [`Worker::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStatus {
    /// Inside `run_forever`/`run_until_finished`/`run_at_most`.
    pub running: bool,
    /// Asked to stop: no longer claiming, letting running tasks finish.
    pub draining: bool,
    /// Tasks being run now.
    pub tasks_running: usize,
    /// Times the worker lost its connection to the docket so far.
    pub disruptions: u64,
    /// The last call to the docket succeeded.
    pub connected: bool,
    /// How long since the worker last made progress (a claim, a heartbeat).
    pub since_progress: Duration,
    /// Past this without progress, the worker counts as stalled.
    pub stall_limit: Duration,
}

/// Stops a running worker from another task: it stops claiming, lets running tasks
/// finish (up to its drain timeout) and returns.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    stopping: watch::Sender<bool>,
}

impl ShutdownHandle {
    /// Asks the worker to stop.
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Forever,
    UntilFinished,
    AtMost(HashMap<String, usize>),
}

impl Worker {
    /// Starts configuring a worker for `docket`, with every task registered in the binary.
    pub fn builder(docket: Docket) -> WorkerBuilder {
        WorkerBuilder::new(docket)
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.shared.info.name
    }

    /// The names of the tasks this worker runs.
    pub fn task_names(&self) -> Vec<&'static str> {
        self.shared.tasks.names()
    }

    /// How many times the worker lost its connection to the backend and recovered.
    pub fn disruptions(&self) -> u64 {
        self.shared.disruptions.load(Ordering::Relaxed)
    }

    /// What the worker is doing right now, for health checks and dashboards.
    pub fn status(&self) -> WorkerStatus {
        let shared = &self.shared;
        WorkerStatus {
            running: shared.running.load(Ordering::Acquire),
            draining: *shared.stopping.borrow(),
            tasks_running: shared
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len(),
            disruptions: shared.disruptions.load(Ordering::Relaxed),
            connected: shared.connected.load(Ordering::Relaxed),
            since_progress: shared.epoch.elapsed().saturating_sub(Duration::from_millis(
                shared.progress_ms.load(Ordering::Relaxed),
            )),
            stall_limit: (shared.settings.heartbeat_interval * 3)
                .max(shared.settings.minimum_check_interval * 3)
                .max(Duration::from_secs(5)),
        }
    }

    /// A handle to stop the worker from elsewhere (a signal handler, a test).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stopping: self.shared.stopping.clone(),
        }
    }

    /// Runs until [`ShutdownHandle::shutdown`] is called, then drains.
    ///
    /// # Errors
    /// When the worker is already running. Backend errors do not end it: it reconnects.
    pub async fn run_forever(&self) -> Result<()> {
        self.run(Mode::Forever).await
    }

    /// Runs until nothing is queued, scheduled or running in the docket.
    ///
    /// # Errors
    /// As [`run_forever`](Self::run_forever).
    pub async fn run_until_finished(&self) -> Result<()> {
        self.run(Mode::UntilFinished).await
    }

    /// Runs until finished, but each listed key runs at most `n` times: after its n-th
    /// run, any further copy of the key is cancelled. For testing tasks that reschedule
    /// themselves.
    ///
    /// # Errors
    /// As [`run_forever`](Self::run_forever).
    pub async fn run_at_most<I, K>(&self, limits: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, usize)>,
        K: Into<String>,
    {
        let limits = limits.into_iter().map(|(k, n)| (k.into(), n)).collect();
        self.run(Mode::AtMost(limits)).await
    }

    async fn run(&self, mode: Mode) -> Result<()> {
        let shared = &self.shared;
        if shared.running.swap(true, Ordering::AcqRel) {
            return Err(Error::InvalidOption {
                name: "run",
                value: shared.info.name.to_string(),
                reason: "this worker is already running".into(),
            });
        }
        let _running = Running(shared);
        // Nothing runs before the strikes in effect are known.
        if !shared.docket.strikes_loaded(Duration::from_secs(1)).await {
            tracing::info!(docket = %shared.docket.name(), worker = %shared.info.name, "waiting for the strikes to load");
            let mut stopping = shared.stopping.subscribe();
            tokio::select! {
                () = async { while !shared.docket.strikes_loaded(Duration::from_mins(1)).await {} } => {}
                _ = stopping.wait_for(|stop| *stop) => {
                    shared.stopping.send_replace(false);
                    return Ok(());
                }
            }
        }
        tracing::info!(
            docket = %shared.docket.name(),
            worker = %shared.info.name,
            concurrency = shared.settings.concurrency,
            tasks = ?shared.tasks.names(),
            "worker starting"
        );
        let background = loops::spawn_all(shared.clone());
        // The loop logs within the caller's span, as if it ran in the caller's future.
        let main_loop = MainLoop::new(shared.clone(), mode).run().in_current_span();
        let result = OwnedTask(tokio::spawn(main_loop)).await;
        background.stop().await;
        shared.values.teardown().await;
        // Ready for another run; a shutdown asked for before this one started was honoured.
        shared.stopping.send_replace(false);
        tracing::info!(docket = %shared.docket.name(), worker = %shared.info.name, "worker stopped");
        result
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.shared.info.name)
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// The longest a draining worker waits for its last runs before it looks again whether
/// anything is left (`run_until_finished`, `run_at_most`).
const SETTLE_WAIT: Duration = Duration::from_millis(20);

/// Marks the worker as not running when its run ends, however it ends: returned, or its
/// future dropped by the caller (a `select!` that took another branch), so that it can
/// run again.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// The main loop, spawned as a task of its own: it then runs on the runtime's worker
/// threads, beside the connections it reads and writes, even when the caller awaits the
/// worker from `main` (`block_on`), where each delivery would otherwise cross to the
/// caller's thread and back. Dropping it (the caller stopped awaiting the worker) aborts
/// the task, which drops the loop and its runs as before.
struct OwnedTask(tokio::task::JoinHandle<Result<()>>);

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for OwnedTask {
    type Output = Result<()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|ended| match ended {
                Ok(result) => result,
                // A panic in the loop reaches the caller, as if the loop ran in its future.
                Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                // Aborted only when the runtime itself shuts down.
                Err(_) => Err(Error::Closed),
            })
    }
}

/// Claims deliveries and hands them to runs, within the concurrency.
struct MainLoop {
    shared: Arc<Shared>,
    mode: Mode,
    slots: Arc<Semaphore>,
    runs: JoinSet<run::Ran>,
    finisher: finisher::Finisher,
    consumer: Option<Box<dyn Consumer>>,
    /// `run_at_most`: runs started per limited key, shared with the runs.
    limits: Option<Arc<run::RunLimits>>,
    backoff: Duration,
    next_sweep: tokio::time::Instant,
    /// The last claim got nothing at all.
    looked_empty: bool,
}

impl MainLoop {
    fn new(shared: Arc<Shared>, mode: Mode) -> Self {
        let limits = match &mode {
            Mode::AtMost(limits) => Some(Arc::new(run::RunLimits::new(limits.clone()))),
            _ => None,
        };
        let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
        let finisher = finisher::Finisher::spawn(shared.clone());
        let backoff = shared.settings.reconnection_delay;
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
            next_sweep: tokio::time::Instant::now(),
        }
    }

    fn sweep_interval(&self) -> Duration {
        (self.shared.settings.redelivery_timeout / 4)
            .clamp(Duration::from_millis(25), Duration::from_secs(30))
    }

    async fn run(mut self) -> Result<()> {
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
                    self.backoff = self.shared.settings.reconnection_delay;
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
                .reclaim(&shared.info.name, shared.settings.redelivery_timeout, free)
                .await?;
            for delivery in &claimed.deliveries {
                tracing::warn!(
                    docket = %shared.docket.name(),
                    worker = %shared.info.name,
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
            self.consumer = Some(backend.consumer(&shared.info.name).await?);
        }
        let consumer = self.consumer.as_mut().ok_or(Error::Closed)?;
        let draining = self.mode != Mode::Forever;
        let block = if !claimed.deliveries.is_empty() {
            Duration::ZERO
        } else if draining && in_flight {
            // The last runs may end any moment, and then the docket may be empty: look
            // again soon rather than after a whole check interval.
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
        Ok(counts.is_empty())
    }

    async fn disrupted(&mut self, error: &Error) {
        self.shared.mark_lost();
        tracing::warn!(
            docket = %self.shared.docket.name(),
            worker = %self.shared.info.name,
            %error,
            retry_in = ?self.backoff,
            "lost the connection to the docket; reconnecting"
        );
        let mut stopping = self.shared.stopping.subscribe();
        tokio::select! {
            () = tokio::time::sleep(self.backoff) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
        let cap = (self.shared.settings.reconnection_delay * 8).max(Duration::from_secs(1));
        self.backoff = (self.backoff * 2).min(cap);
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
                        worker = %self.shared.info.name,
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
