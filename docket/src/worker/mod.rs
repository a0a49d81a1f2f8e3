//! [`Worker`]: claims tasks from a docket and runs them.
//!
//! [`main_loop`] claims deliveries and starts a [`run`] for each; the [`finisher`] writes
//! how runs ended in batches; [`loops`] keep the worker's other duties (the scheduler,
//! lease renewal, heartbeats, cancellations, seeding [`automatic`] tasks, giving up on
//! [`unserved`] calls).
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
//! assert_eq!(execution.result().await?, "HI");
//! # Ok(()) }
//! ```

mod automatic;
mod builder;
pub mod builtin;
mod finisher;
pub(crate) mod health;
mod loops;
mod main_loop;
mod run;
mod serve;
mod tally;
mod unserved;

use std::any::Any;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

pub use builder::{Fallback, WorkerBuilder};
pub use serve::TaskModules;

use crate::backend::{EntryId, Slot};
use crate::behaviors::Behaviors;
use crate::client::Docket;
use crate::error::{Error, Result, WriteRefusal};
use crate::inject::WorkerValues;
use crate::model::WorkerInfo;
use crate::observe::metrics::Labels;
use crate::task::registry::TaskSet;

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
    /// The behaviours asked about each task's runs, by task.
    pub behaviors: HashMap<&'static str, Behaviors>,
    /// The behaviours asked about runs of tasks this worker does not know (the fallback).
    pub other_behaviors: Behaviors,
    /// `Shared<T>` values: given on the builder, or built on first use.
    pub values: Arc<WorkerValues>,
    /// What every run is given for injection (its docket, the shared values).
    pub context: Arc<dyn Any + Send + Sync>,
    /// Metric labels of this worker and each task it knows, by task.
    pub task_labels: HashMap<&'static str, Labels>,
    /// In-flight deliveries: delivery → key, for renewal and cancellation.
    pub in_flight: Mutex<HashMap<EntryId, InFlight>>,
    /// Cancellations that found no run here, kept a while for a run claimed just before
    /// and registered just after (only touched with `in_flight` locked).
    pub unmatched_cancels: Mutex<loops::UnmatchedCancels>,
    /// The tasks this worker handed calls back for (warned about once each).
    pub unserved_seen: Mutex<std::collections::HashSet<String>>,
    /// The worker was told which tasks to serve (else it serves every one linked in).
    pub named_tasks: bool,
    /// Whether the cancellation listener is subscribed: while it is not, a new run
    /// reads its record once to learn of a cancel it could have missed.
    pub listening: AtomicBool,
    /// Set when the worker should stop claiming.
    pub stopping: watch::Sender<bool>,
    pub running: AtomicBool,
    pub disruptions: AtomicU64,
    /// Runs ended since the last heartbeat reported them.
    pub tally: tally::Tally,
    /// Health: the last backend call succeeded, and when the worker last made progress
    /// (milliseconds since `epoch`).
    pub connected: AtomicBool,
    /// What is wrong while calls fail (`None` while they work).
    pub trouble: Mutex<Option<Trouble>>,
    pub progress_ms: AtomicU64,
    pub epoch: std::time::Instant,
}

impl Shared {
    /// A backend call succeeded: the worker is connected and making progress. It ends a
    /// lost connection, but not a refusal to write, which only a write ends (see
    /// [`mark_written`](Self::mark_written)): reads go on while Redis refuses writes
    /// for want of memory.
    pub(crate) fn mark_ok(&self) {
        self.recovered(false);
    }

    /// A write succeeded (the heartbeat): whatever the trouble was, it is over.
    pub(crate) fn mark_written(&self) {
        self.recovered(true);
    }

    fn recovered(&self, wrote: bool) {
        let since = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.store(since, Ordering::Relaxed);
        if self.connected.load(Ordering::Relaxed) {
            return;
        }
        let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        if !wrote && trouble.as_ref().is_some_and(|t| t.refusal.is_some()) {
            return;
        }
        self.connected.store(true, Ordering::Relaxed);
        if let Some(ended) = trouble.take() {
            tracing::info!(
                docket.name = %self.docket.name(),
                docket.worker = %self.info.name(),
                after = ?ended.since.elapsed(),
                "{}; resuming",
                ended.describe_end()
            );
        }
    }

    /// A backend call failed: the worker reports unhealthy, saying why, until calls work
    /// again. One trouble (the connection lost, or one refusal to write) is logged and
    /// counted once however long it lasts, each failure after the first at debug level.
    pub(crate) fn mark_lost(&self, what: &str, error: &Error) {
        let refusal = match error {
            Error::WriteRefused { refusal, .. } => Some(*refusal),
            _ => None,
        };
        let mut trouble = self.trouble.lock().unwrap_or_else(PoisonError::into_inner);
        // Under the lock, so that a success at the same moment cannot leave the worker
        // reported connected with a trouble recorded.
        self.connected.store(false, Ordering::Relaxed);
        if trouble.as_ref().is_some_and(|t| t.refusal == refusal) {
            tracing::debug!(worker = %self.info.name(), %error, "{what} failed again");
            return;
        }
        *trouble = Some(Trouble {
            refusal,
            since: std::time::Instant::now(),
        });
        self.disruptions.fetch_add(1, Ordering::Relaxed);
        crate::observe::metrics::count("docket_redis_disruptions", self.labels(None), 1);
        if let Some(refusal) = refusal {
            tracing::warn!(
                docket = %self.docket.name(),
                worker = %self.info.name(),
                %error,
                "Redis refuses writes with {}: {what} failed; backing off until it clears",
                refusal.code()
            );
        } else {
            tracing::warn!(
                docket = %self.docket.name(),
                worker = %self.info.name(),
                %error,
                "{what} failed: lost the connection to the docket; reconnecting"
            );
        }
    }

    /// Metric labels of this worker (and a task).
    pub(crate) fn labels(&self, task: Option<&str>) -> Labels {
        crate::observe::metrics::labels(self.docket.name(), Some(self.info.name()), task)
    }

    /// Metric labels of this worker and a task, made once for each task it knows.
    pub(crate) fn task_labels(&self, task: &str) -> Cow<'_, Labels> {
        match self.task_labels.get(task) {
            Some(labels) => Cow::Borrowed(labels),
            None => Cow::Owned(self.labels(Some(task))),
        }
    }

    /// The behaviours asked about runs of `task`.
    pub(crate) fn behaviors(&self, task: &str) -> &Behaviors {
        self.behaviors.get(task).unwrap_or(&self.other_behaviors)
    }
}

/// A run in progress.
pub(crate) struct InFlight {
    pub key: String,
    pub generation: u64,
    pub abort: futures::future::AbortHandle,
    /// The concurrency slot the run holds, renewed with its message.
    pub slot: Option<Slot>,
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
    pub unserved_grace: Duration,
}

/// Why a worker's calls to the docket fail, since when.
pub(crate) struct Trouble {
    /// Redis refuses writes (else the connection is lost).
    pub refusal: Option<WriteRefusal>,
    pub since: std::time::Instant,
}

impl Trouble {
    fn describe_end(&self) -> String {
        match self.refusal {
            Some(refusal) => format!(
                "Redis takes writes again (it refused with {})",
                refusal.code()
            ),
            None => "connection to the docket restored".to_owned(),
        }
    }
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
    /// Redis refuses the worker's writes, with this refusal (the worker backs off and
    /// resumes by itself once it clears).
    pub refused: Option<WriteRefusal>,
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
pub(crate) enum Mode {
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
        self.shared.info.name()
    }

    /// The names of the tasks this worker runs, the built-in ones included.
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
            refused: shared
                .trouble
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|trouble| trouble.refusal),
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
                value: shared.info.name().to_string(),
                reason: "this worker is already running".into(),
            });
        }
        let _running = Running(shared);
        // Nothing runs before the strikes in effect are known.
        if !shared.docket.strikes_loaded(Duration::from_secs(1)).await {
            tracing::info!(docket = %shared.docket.name(), worker = %shared.info.name(), "waiting for the strikes to load");
            let mut stopping = shared.stopping.subscribe();
            tokio::select! {
                () = async { while !shared.docket.strikes_loaded(Duration::from_mins(1)).await {} } => {}
                _ = stopping.wait_for(|stop| *stop) => {
                    shared.stopping.send_replace(false);
                    return Ok(());
                }
            }
        }
        let served = shared.tasks.names();
        if !shared.named_tasks && served.iter().all(|task| builtin::NAMES.contains(task)) {
            tracing::warn!(
                docket = %shared.docket.name(),
                worker = %shared.info.name(),
                "this worker serves only the built-in tasks ({}): no task of yours is linked \
                 into this binary. A crate is linked only when the binary uses it: name the \
                 crates that declare your tasks in `main`, with \
                 `docket::run_worker_with(docket::tasks!(my_tasks))` (or \
                 `Worker::builder(..).serve(docket::tasks!(my_tasks))`), or add \
                 `use my_tasks as _;`. Calls of tasks it does not serve wait for a worker \
                 that does",
                served.join(", ")
            );
        }
        tracing::info!(
            docket = %shared.docket.name(),
            worker = %shared.info.name(),
            concurrency = shared.settings.concurrency,
            tasks = ?served,
            "worker starting"
        );
        let background = loops::spawn_all(shared.clone());
        // The loop logs within the caller's span, as if it ran in the caller's future.
        let main_loop = main_loop::MainLoop::new(shared.clone(), mode)
            .run()
            .in_current_span();
        let result = OwnedTask(tokio::spawn(main_loop)).await;
        background.stop().await;
        shared.values.teardown().await;
        // Ready for another run; a shutdown asked for before this one started was honoured.
        shared.stopping.send_replace(false);
        tracing::info!(docket = %shared.docket.name(), worker = %shared.info.name(), "worker stopped");
        result
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.shared.info.name())
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

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
