//! [`WorkerBuilder`]: the worker's options, named as in the production guide.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::{Settings, Shared, TaskModules, Worker, builtin};
use crate::behaviors::{Behavior, Behaviors, SharedBehavior};
use crate::client::Docket;
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::inject::{FromWorker, WorkerContext, WorkerValues};
use crate::model::{TaskError, TaskErrorKind, TaskOptions, WorkerInfo};
use crate::observe::metrics;
use crate::task::registry::{self, RunFuture, TaskRegistration, TaskSet, registered};

/// What a worker does with a message whose function it does not know.
#[derive(Clone)]
pub struct Fallback(Arc<dyn Fn(Execution) -> RunFuture + Send + Sync>);

impl Fallback {
    pub(crate) fn call(&self, execution: Execution) -> RunFuture {
        (self.0)(execution)
    }
}

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fallback(..)")
    }
}

/// Configures a [`Worker`]. Defaults follow the production guide.
///
/// | option | default |
/// |---|---|
/// | `name` | `<hostname>#<pid>#<n>` |
/// | `concurrency` | 10 |
/// | `redelivery_timeout` | 5 minutes |
/// | `reconnection_delay` | 5 seconds |
/// | `minimum_check_interval` | 100 ms |
/// | `scheduling_resolution` | 250 ms |
/// | `schedule_automatic_tasks` | true |
/// | `heartbeat_interval` | 2 seconds |
/// | `missed_heartbeats` | 5 |
/// | `drain_timeout` | 30 seconds |
/// | `automatic_interval` | 1 minute |
/// | `unserved_grace` | 10 minutes |
#[must_use]
pub struct WorkerBuilder {
    docket: Docket,
    name: Option<String>,
    settings: Settings,
    serve: Option<TaskModules>,
    tasks: Option<Tasks>,
    fallback: Option<Fallback>,
    behaviors: Vec<SharedBehavior>,
    values: Arc<WorkerValues>,
}

/// The tasks a worker was told to run, as selectors or as registrations.
enum Tasks {
    Selected(Vec<String>),
    Registered(Vec<&'static TaskRegistration>),
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("docket", &self.docket.name())
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("behaviors", &self.behaviors.len())
            .finish_non_exhaustive()
    }
}

static WORKER_COUNTER: AtomicU64 = AtomicU64::new(0);

fn default_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let n = WORKER_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{host}#{}#{n}", std::process::id())
}

impl WorkerBuilder {
    pub(super) fn new(docket: Docket) -> Self {
        Self {
            docket,
            name: None,
            settings: Settings {
                concurrency: 10,
                redelivery_timeout: Duration::from_mins(5),
                reconnection_delay: Duration::from_secs(5),
                minimum_check_interval: Duration::from_millis(100),
                scheduling_resolution: Duration::from_millis(250),
                schedule_automatic_tasks: true,
                heartbeat_interval: Duration::from_secs(2),
                missed_heartbeats: 5,
                drain_timeout: Duration::from_secs(30),
                automatic_interval: Duration::from_mins(1),
                unserved_grace: Duration::from_mins(10),
            },
            serve: None,
            tasks: None,
            fallback: None,
            behaviors: Vec::new(),
            values: Arc::default(),
        }
    }

    /// A unique name for this worker (shown in snapshots and metrics).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many tasks run at once.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// How long a message may go unrenewed before another worker takes it over. Set it
    /// above your longest task's p99 duration.
    pub fn redelivery_timeout(mut self, timeout: Duration) -> Self {
        self.settings.redelivery_timeout = timeout;
        self
    }

    /// The first wait before reconnecting after a backend error (it then backs off).
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.settings.reconnection_delay = delay;
        self
    }

    /// How long one read waits for new messages when the stream is empty.
    pub fn minimum_check_interval(mut self, interval: Duration) -> Self {
        self.settings.minimum_check_interval = interval;
        self
    }

    /// The longest the scheduler sleeps between looks at future tasks.
    pub fn scheduling_resolution(mut self, resolution: Duration) -> Self {
        self.settings.scheduling_resolution = resolution;
        self
    }

    /// Whether this worker seeds `automatic` perpetual and cron tasks.
    pub fn schedule_automatic_tasks(mut self, enabled: bool) -> Self {
        self.settings.schedule_automatic_tasks = enabled;
        self
    }

    /// How often the worker records its heartbeat.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.settings.heartbeat_interval = interval;
        self
    }

    /// Heartbeats a worker may miss before it is no longer listed.
    pub fn missed_heartbeats(mut self, missed: u32) -> Self {
        self.settings.missed_heartbeats = missed;
        self
    }

    /// How long a stopping worker waits for running tasks before leaving them for
    /// redelivery.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.settings.drain_timeout = timeout;
        self
    }

    /// How often the worker re-seeds automatic perpetual and cron tasks whose chain is
    /// not live (a lease keeps the fleet from doing it more than once per interval).
    pub fn automatic_interval(mut self, interval: Duration) -> Self {
        self.settings.automatic_interval = interval;
        self
    }

    /// How long a call may wait for a worker that serves its task before it is given
    /// up on: dead-lettered, its record FAILED with an error naming the task, the
    /// workers seen and what they serve.
    ///
    /// A worker that claims a call of a task it does not serve (and has no
    /// [`fallback`](Self::fallback)) hands it back instead of failing it: it waits,
    /// parked, until a worker that serves the task sends a heartbeat. During a rolling or
    /// blue-green deploy that is the new workers coming up; a task no worker serves any
    /// more ends in the dead letters after this grace period, which
    /// `docket dead-letters retry` undoes once a worker serves it.
    pub fn unserved_grace(mut self, grace: Duration) -> Self {
        self.settings.unserved_grace = grace;
        self
    }

    /// Adds a behaviour around every run, after the built-in retry and perpetual ones
    /// and any added before it.
    pub fn behavior(mut self, behavior: impl Behavior) -> Self {
        self.behaviors.push(SharedBehavior::new(behavior));
        self
    }

    /// Gives the worker a value its runs share as [`Shared<T>`](crate::Shared) (a
    /// worker-level dependency). Values given here are the caller's to release.
    pub fn shared<T: FromWorker>(self, value: T) -> Self {
        self.values.provide(value);
        self
    }

    /// Runs only the tasks these select instead of every registered one (the built-in
    /// `trace`, `fail` and `sleep` are always included). Each selector is a task name, a
    /// module path (`myapp::billing` or `myapp.billing`: the tasks declared in it or
    /// below) or `module:task`, as `docket worker --tasks` takes them.
    ///
    /// ```
    /// #[docket::task]
    /// async fn charge(cents: u64) {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> docket::Result<()> {
    /// let docket = docket::Docket::connect("doc-tasks", "memory://doc-tasks").await?;
    /// let worker = docket::Worker::builder(docket.clone()).tasks(["charge"]).build()?;
    /// assert!(worker.task_names().contains(&"charge"));
    ///
    /// let error = docket::Worker::builder(docket).tasks(["refund"]).build().unwrap_err();
    /// assert!(error.to_string().contains("`refund` matches no task"));
    /// # Ok(()) }
    /// ```
    pub fn tasks<I>(mut self, selectors: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.tasks = Some(Tasks::Selected(
            selectors.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Serves the tasks declared in these crates and modules (and the built-in ones),
    /// instead of every task linked into the binary; [`tasks`](Self::tasks) narrows
    /// them further. See [`tasks!`](crate::tasks).
    ///
    /// ```
    /// mod mail {
    ///     #[docket::task]
    ///     pub async fn send_welcome(user: u64) {}
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> docket::Result<()> {
    /// let docket = docket::Docket::connect("doc-serve", "memory://doc-serve").await?;
    /// let worker = docket::Worker::builder(docket).serve(docket::tasks!(self::mail)).build()?;
    /// assert!(worker.task_names().contains(&"send_welcome"));
    /// # Ok(()) }
    /// ```
    pub fn serve(mut self, modules: TaskModules) -> Self {
        self.serve = Some(modules);
        self
    }

    /// Runs only these registrations (and the built-in tasks).
    pub(crate) fn registrations(mut self, tasks: Vec<&'static TaskRegistration>) -> Self {
        self.tasks = Some(Tasks::Registered(tasks));
        self
    }

    /// What to do with messages for functions this worker does not know. Without one,
    /// such a call is handed back to wait for a worker that serves its task (see
    /// [`unserved_grace`](Self::unserved_grace)).
    pub fn fallback<F, Fut, E>(mut self, fallback: F) -> Self
    where
        F: Fn(Execution) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let fallback = Arc::new(fallback);
        self.fallback = Some(Fallback(Arc::new(move |execution| {
            let future = fallback(execution);
            Box::pin(async move {
                future
                    .await
                    .map(|()| None)
                    .map_err(|error| TaskError::new(TaskErrorKind::Failed, error.to_string()))
            })
        })));
        self
    }

    /// Checks the options and builds the worker.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming an option out of range, a task selector that
    /// selects nothing, or a module given to [`serve`](Self::serve) that declares no task.
    pub fn build(self) -> Result<Worker> {
        check(&self.settings)?;
        let named = self.serve.is_some() || self.tasks.is_some();
        let tasks = served(self.serve.as_ref(), self.tasks)?;
        let name = self.name.unwrap_or_else(default_name);
        if name.is_empty() {
            return Err(Error::InvalidOption {
                name: "name",
                value: name,
                reason: "a worker name cannot be empty".into(),
            });
        }
        let task_labels = tasks
            .names()
            .into_iter()
            .map(|task| {
                let labels = metrics::labels(self.docket.name(), Some(&name), Some(task));
                (task, labels)
            })
            .collect();
        // A slot is held as long as a message; a rule the store cannot answer now is
        // asked again after a reconnection pause.
        let lease = self.settings.redelivery_timeout;
        let retry_in = self
            .settings
            .reconnection_delay
            .max(Duration::from_millis(100));
        let behaviors = tasks
            .registrations()
            .into_iter()
            .map(|task| {
                let behaviors =
                    Behaviors::for_task(&self.behaviors, task.options(), lease, retry_in);
                (task.name(), behaviors)
            })
            .collect();
        let other_behaviors =
            Behaviors::for_task(&self.behaviors, &TaskOptions::new(), lease, retry_in);
        let context = Arc::new(WorkerContext {
            docket: self.docket.clone(),
            values: self.values.clone(),
        });
        Ok(Worker {
            shared: Arc::new(Shared {
                task_labels,
                docket: self.docket,
                info: WorkerInfo::new(name.into(), self.settings.concurrency),
                settings: self.settings,
                tasks,
                fallback: self.fallback,
                behaviors,
                other_behaviors,
                context,
                values: self.values,
                in_flight: Mutex::new(HashMap::new()),
                unmatched_cancels: Mutex::default(),
                unserved_seen: Mutex::default(),
                named_tasks: named,
                listening: AtomicBool::new(false),
                stopping: watch::channel(false).0,
                running: AtomicBool::new(false),
                disruptions: AtomicU64::new(0),
                tally: super::tally::Tally::default(),
                connected: AtomicBool::new(false),
                trouble: Mutex::new(None),
                progress_ms: AtomicU64::new(0),
                epoch: std::time::Instant::now(),
            }),
        })
    }
}

/// Refuses settings out of range, naming the option.
fn check(s: &Settings) -> Result<()> {
    let positive = [
        ("redelivery_timeout", s.redelivery_timeout),
        ("minimum_check_interval", s.minimum_check_interval),
        ("scheduling_resolution", s.scheduling_resolution),
        ("heartbeat_interval", s.heartbeat_interval),
        ("automatic_interval", s.automatic_interval),
        ("unserved_grace", s.unserved_grace),
    ];
    for (name, value) in positive {
        if value.is_zero() {
            return Err(Error::InvalidOption {
                name,
                value: format!("{value:?}"),
                reason: "must be greater than zero".into(),
            });
        }
    }
    if s.concurrency == 0 {
        return Err(Error::InvalidOption {
            name: "concurrency",
            value: "0".into(),
            reason: "a worker must run at least one task at a time".into(),
        });
    }
    if s.missed_heartbeats == 0 {
        return Err(Error::InvalidOption {
            name: "missed_heartbeats",
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(())
}

/// The tasks a worker serves: those declared where it was told to serve (every task
/// linked into the binary unless told), narrowed to those it was told to run; the
/// built-in ones always.
fn served(serve: Option<&TaskModules>, told: Option<Tasks>) -> Result<TaskSet> {
    let all: Vec<&'static TaskRegistration> = registered().collect();
    let pool = match serve {
        None => all.clone(),
        Some(modules) => registry::in_modules(modules.modules(), &all).map_err(|reason| {
            Error::InvalidOption {
                name: "serve",
                value: modules.modules().join(", "),
                reason,
            }
        })?,
    };
    let chosen = match told {
        None => serve.map(|_| pool),
        Some(Tasks::Registered(chosen)) => Some(chosen),
        Some(Tasks::Selected(selectors)) => Some(registry::select(&selectors, &pool).map_err(
            |reason| Error::InvalidOption {
                name: "tasks",
                value: selectors.join(", "),
                reason,
            },
        )?),
    };
    let mut tasks = TaskSet::default();
    match chosen {
        Some(chosen) => all
            .iter()
            .copied()
            .filter(|t| builtin::NAMES.contains(&t.name()))
            .chain(chosen)
            .for_each(|t| tasks.insert(t)),
        None => all.iter().copied().for_each(|t| tasks.insert(t)),
    }
    Ok(tasks)
}
