//! `docket worker`: the production worker process.

use std::fmt::Write as _;
use std::net::{Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::Outcome;
use super::args::{GlobalArgs, WorkerArgs};
use crate::backend::redact;
use crate::client::Docket;
use crate::observe;
use crate::task::registry::{self, TaskRegistration, registered};
use crate::worker::{TaskModules, Worker, builtin, health};

/// The tasks a worker of this binary serves: those declared where `serve` names, else
/// every one linked in; the built-in ones included.
///
/// # Errors
/// A module of `serve` that declares no task.
pub(super) fn serving(
    serve: Option<&TaskModules>,
) -> Result<Vec<&'static TaskRegistration>, String> {
    let all: Vec<&'static TaskRegistration> = registered().collect();
    let Some(modules) = serve else {
        return Ok(all);
    };
    let mut tasks = registry::in_modules(modules.modules(), &all)?;
    for task in all {
        if builtin::NAMES.contains(&task.name()) && !tasks.iter().any(|t| std::ptr::eq(*t, task)) {
            tasks.push(task);
        }
    }
    Ok(tasks)
}

/// What `worker --help` says about the tasks this binary serves.
pub(super) fn served_help(serve: Option<&TaskModules>) -> String {
    let mut tasks = match serving(serve) {
        Ok(tasks) => tasks,
        Err(reason) => return format!("Tasks: none: {reason}"),
    };
    tasks.sort_by_key(|task| (builtin::NAMES.contains(&task.name()), task.name()));
    let width = tasks
        .iter()
        .map(|task| task.name().len())
        .max()
        .unwrap_or(0);
    let mut help = String::from("Tasks this worker serves:\n");
    for task in &tasks {
        let origin = if builtin::NAMES.contains(&task.name()) {
            "built in"
        } else {
            task.module_path()
        };
        let _ = writeln!(help, "  {:width$}  {origin}", task.name());
    }
    help.push_str(
        "\nA crate's tasks are served only when this binary is linked with it: name the \
         crates that declare them with `docket::run_worker_with(docket::tasks!(my_tasks))` \
         in `main`. A call of a task no worker serves waits for one (--unserved-grace).",
    );
    help
}

pub(super) async fn run(
    global: &GlobalArgs,
    args: WorkerArgs,
    serve: Option<&TaskModules>,
) -> Outcome {
    let served = serving(serve)?;
    let tasks =
        registry::select(&args.tasks, &served).map_err(|reason| format!("--tasks: {reason}"))?;
    // Ports are taken before connecting so that a clash is reported at once.
    let health = bind(args.healthcheck_port, "--healthcheck-port").await?;
    let metrics = bind(args.metrics_port, "--metrics-port").await?;
    let mut signals =
        Signals::new().map_err(|e| format!("cannot listen for SIGTERM/SIGINT: {e}"))?;
    let Some(docket) = connect_patiently(global, &args, &mut signals).await? else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut builder = Worker::builder(docket)
        .concurrency(usize::try_from(args.concurrency).unwrap_or(usize::MAX))
        .redelivery_timeout(args.redelivery_timeout)
        .reconnection_delay(args.reconnection_delay)
        .minimum_check_interval(args.minimum_check_interval)
        .scheduling_resolution(args.scheduling_resolution)
        .schedule_automatic_tasks(args.automatic_tasks())
        .drain_timeout(args.drain_timeout)
        .unserved_grace(args.unserved_grace);
    if let Some(modules) = serve {
        builder = builder.serve(modules.clone());
    }
    if !tasks.is_empty() {
        builder = builder.registrations(tasks);
    }
    if let Some(name) = &args.name {
        builder = builder.name(name.clone());
    }
    let worker = Arc::new(builder.build().map_err(|e| e.to_string())?);
    let mut servers = Vec::new();
    if let Some(listener) = health {
        let w = worker.clone();
        let docket = global.docket.clone();
        servers.push(tokio::spawn(observe::serve(
            listener,
            move |path| match path {
                "/" | "/health" => Some(health::health(&docket, w.name(), w.status())),
                "/ready" => Some(health::ready(&docket, w.name(), w.status())),
                _ => None,
            },
        )));
    }
    if let Some(listener) = metrics {
        servers.push(tokio::spawn(observe::serve(listener, |path| {
            (path == "/metrics").then(observe::metrics_response)
        })));
    }
    let signals = tokio::spawn(stop_on_signals(signals, worker.clone(), args.drain_timeout));
    let result = if args.until_finished {
        worker.run_until_finished().await
    } else {
        worker.run_forever().await
    };
    signals.abort();
    servers.iter().for_each(tokio::task::JoinHandle::abort);
    result.map_err(|e| format!("worker `{}` stopped: {e}", worker.name()))?;
    Ok(ExitCode::SUCCESS)
}

/// Connects, waiting for a server that is not up yet (a container started before Redis)
/// with a capped backoff from `--reconnection-delay`. `None` when a signal came first.
async fn connect_patiently(
    global: &GlobalArgs,
    args: &WorkerArgs,
    signals: &mut Signals,
) -> Result<Option<Docket>, String> {
    let first_delay = args.reconnection_delay;
    let mut delay = first_delay.max(Duration::from_millis(100));
    let cap = (first_delay * 8).max(Duration::from_secs(1));
    loop {
        let connecting = Docket::builder(global.docket.clone(), global.url.clone())
            .max_deliveries(args.max_deliveries)
            .execution_ttl(args.execution_ttl)
            .connect();
        match connecting.await {
            Ok(docket) => return Ok(Some(docket)),
            Err(error) if error.is_unreachable() => {
                tracing::warn!(
                    docket = %global.docket,
                    url = %redact(&global.url),
                    %error,
                    retry_in = ?delay,
                    "cannot reach the docket yet; waiting"
                );
            }
            Err(error) => return Err(super::cannot_open(global, &error)),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            signal = signals.next() => {
                tracing::info!(signal, "stopping before the docket could be reached");
                return Ok(None);
            }
        }
        delay = (delay * 2).min(cap);
    }
}

/// Binds a port on every interface (IPv6 and IPv4 where the system maps them).
async fn bind(port: Option<u16>, flag: &str) -> Result<Option<TcpListener>, String> {
    let Some(port) = port else { return Ok(None) };
    let any = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let listener = match TcpListener::bind(any).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
            .await
            .map_err(|e| format!("{flag} {port}: cannot listen on port {port}: {e}"))?,
    };
    Ok(Some(listener))
}

/// The first SIGTERM or SIGINT drains the worker; a second one leaves at once, leaving
/// running tasks for redelivery.
async fn stop_on_signals(mut signals: Signals, worker: Arc<Worker>, drain: Duration) {
    let name = signals.next().await;
    tracing::info!(
        worker = %worker.name(),
        signal = name,
        drain_timeout = ?drain,
        "stopping: no new tasks; running tasks may finish"
    );
    worker.shutdown_handle().shutdown();
    let name = signals.next().await;
    tracing::warn!(
        worker = %worker.name(),
        signal = name,
        "second signal: exiting now; unfinished tasks will be redelivered"
    );
    std::process::exit(130);
}

struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
