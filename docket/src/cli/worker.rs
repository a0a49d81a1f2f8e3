//! `docket worker`: the production worker process.

use std::net::{Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use super::Outcome;
use super::args::{GlobalArgs, WorkerArgs};
use crate::client::{Docket, redact};
use crate::observe;
use crate::task::{TaskRegistration, registered};
use crate::worker::Worker;

pub(super) async fn run(global: &GlobalArgs, args: WorkerArgs) -> Outcome {
    let tasks = select_tasks(&args.tasks, &registered().collect::<Vec<_>>())?;
    // Ports are taken before connecting so that a clash is reported at once.
    let health = bind(args.healthcheck_port, "--healthcheck-port").await?;
    let metrics = bind(args.metrics_port, "--metrics-port").await?;
    let mut signals =
        Signals::new().map_err(|e| format!("cannot listen for SIGTERM/SIGINT: {e}"))?;
    let Some(docket) = connect_patiently(
        global,
        args.max_deliveries,
        args.reconnection_delay,
        &mut signals,
    )
    .await?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut builder = Worker::builder(docket)
        .concurrency(usize::try_from(args.concurrency).unwrap_or(usize::MAX))
        .redelivery_timeout(args.redelivery_timeout)
        .reconnection_delay(args.reconnection_delay)
        .minimum_check_interval(args.minimum_check_interval)
        .scheduling_resolution(args.scheduling_resolution)
        .schedule_automatic_tasks(args.automatic_tasks())
        .drain_timeout(args.drain_timeout);
    if let Some(tasks) = tasks {
        builder = builder.tasks(tasks);
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
                "/" | "/health" => Some(observe::health(&docket, w.name(), w.status())),
                "/ready" => Some(observe::ready(&docket, w.name(), w.status())),
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
    max_deliveries: u32,
    first_delay: Duration,
    signals: &mut Signals,
) -> Result<Option<Docket>, String> {
    let mut delay = first_delay.max(Duration::from_millis(100));
    let cap = (first_delay * 8).max(Duration::from_secs(1));
    loop {
        let connecting = Docket::builder(global.docket.clone(), global.url.clone())
            .max_deliveries(max_deliveries)
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

/// One `--tasks` entry.
#[derive(Debug, PartialEq, Eq)]
enum Selector {
    /// `charge`: a task name, or a top-level module.
    Word(String),
    /// `myapp::billing` or `myapp.billing`.
    Module(String),
    /// `myapp.billing:charge`.
    Qualified { module: String, name: String },
}

impl Selector {
    fn parse(entry: &str) -> Self {
        let bytes = entry.as_bytes();
        // A lone `:` (not half of `::`) separates the module from the task.
        let lone = (0..bytes.len()).rev().find(|&i| {
            bytes[i] == b':' && (i == 0 || bytes[i - 1] != b':') && bytes.get(i + 1) != Some(&b':')
        });
        let module = |path: &str| path.replace('.', "::");
        match lone {
            Some(i) => Self::Qualified {
                module: module(&entry[..i]),
                name: entry[i + 1..].to_owned(),
            },
            None if entry.contains('.') || entry.contains("::") => Self::Module(module(entry)),
            None => Self::Word(entry.to_owned()),
        }
    }

    fn selects(&self, task: &TaskRegistration) -> bool {
        let under = |module: &str| {
            let path = task.module_path();
            path == module
                || path
                    .strip_prefix(module)
                    .is_some_and(|rest| rest.starts_with("::"))
        };
        match self {
            Self::Word(word) => task.name() == word || under(word),
            Self::Module(module) => under(module),
            Self::Qualified { module, name } => task.name() == name && under(module),
        }
    }
}

/// The tasks `--tasks` selects (`None`: every registered task). Each entry is a task
/// name, a module path (`myapp::billing` or `myapp.billing`: the tasks declared in it or
/// below), or `module:task` (`myapp.billing:charge`).
///
/// # Errors
/// An entry that selects nothing, named, with the tasks there are.
fn select_tasks(
    entries: &[String],
    all: &[&'static TaskRegistration],
) -> Result<Option<Vec<&'static TaskRegistration>>, String> {
    let entries: Vec<&str> = entries
        .iter()
        .map(|e| e.trim())
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let mut chosen: Vec<&'static TaskRegistration> = Vec::new();
    for entry in entries {
        let selector = Selector::parse(entry);
        let matches: Vec<_> = all
            .iter()
            .copied()
            .filter(|t| selector.selects(t))
            .collect();
        if matches.is_empty() {
            let mut known: Vec<String> = all
                .iter()
                .map(|t| format!("{} ({})", t.name(), t.module_path()))
                .collect();
            known.sort();
            return Err(format!(
                "--tasks entry `{entry}` matches no task linked into this binary; \
                 use a task name, a module path or module:task; the tasks are: {}",
                known.join(", ")
            ));
        }
        for task in matches {
            if !chosen.iter().any(|c| std::ptr::eq(*c, task)) {
                chosen.push(task);
            }
        }
    }
    Ok(Some(chosen))
}

#[cfg(test)]
mod tests {
    use super::*;

    mod billing {
        #[docket::task(name = "cli_charge")]
        pub async fn charge() {}

        pub mod refunds {
            #[docket::task(name = "cli_refund")]
            pub async fn refund() {}
        }
    }

    #[docket::task(name = "cli_audit")]
    async fn audit() {}

    fn names(entries: &[&str]) -> Result<Vec<&'static str>, String> {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        let chosen = select_tasks(&entries, &registered().collect::<Vec<_>>())?;
        let mut names: Vec<_> = chosen.unwrap().iter().map(|t| t.name()).collect();
        names.sort_unstable();
        Ok(names)
    }

    #[test]
    fn by_name_module_and_module_task() {
        let here = module_path!();
        assert_eq!(names(&["cli_audit"]).unwrap(), ["cli_audit"]);
        assert_eq!(
            names(&[&format!("{here}::billing")]).unwrap(),
            ["cli_charge", "cli_refund"]
        );
        let dotted = format!("{}.billing.refunds", here.replace("::", "."));
        assert_eq!(names(&[&dotted]).unwrap(), ["cli_refund"]);
        let qualified = format!("{}.billing:cli_charge", here.replace("::", "."));
        assert_eq!(names(&[&qualified]).unwrap(), ["cli_charge"]);
        assert_eq!(
            names(&["cli_audit", "cli_charge", "cli_audit"]).unwrap(),
            ["cli_audit", "cli_charge"]
        );
        assert!(
            select_tasks(&[], &registered().collect::<Vec<_>>())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_entry_that_selects_nothing_is_named() {
        let error = names(&["cli_audit", "nope"]).unwrap_err();
        assert!(error.contains("`nope` matches no task"), "{error}");
        assert!(error.contains("cli_audit ("), "{error}");
        // A module prefix must end at a `::` boundary.
        let here = module_path!();
        let error = names(&[&format!("{here}::bill")]).unwrap_err();
        assert!(error.contains("matches no task"), "{error}");
        let qualified = format!("{here}::billing:cli_audit");
        assert!(names(&[&qualified]).is_err());
    }
}
