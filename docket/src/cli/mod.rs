//! The command line: one clap command tree shared by the standalone `docket`
//! binary and every application whose `main` calls [`run_worker`].
//!
//! ```no_run
//! #[docket::task]
//! async fn send_welcome_email(address: String) { /* ... */ }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     // `myapp worker --concurrency 50`, `myapp snapshot`, `myapp strike ...`
//!     docket::run_worker().await
//! }
//! ```
//!
//! To embed the commands in a larger command line, mount [`command()`] as a subcommand
//! and hand its matches to [`run_matches`].

mod admin;
mod args;
#[cfg(test)]
mod docs_check;
mod duration;
mod logging;
mod table;
mod watch;
mod worker;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

pub use args::{DEFAULT_NAME, DEFAULT_URL};

use crate::backend::BackendUrl;
use crate::client::Docket;
use crate::worker::TaskModules;
use args::{Cli, Command, GlobalArgs};

/// The command tree, for embedding in a larger `clap` command line or for generating
/// documentation.
///
/// ```
/// let help = docket::cli::command().render_help().to_string();
/// assert!(help.contains("worker"));
/// ```
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line of this process's arguments, with every task linked into the
/// binary: `myapp worker`, `myapp snapshot`, `myapp strike ...`.
///
/// Returns the process exit code: 0 on success (a worker drained after SIGTERM/SIGINT
/// included), 1 when the command failed (one line on stderr saying why), 2 for bad usage.
pub async fn run_worker() -> ExitCode {
    run_from(std::env::args_os()).await
}

/// Like [`run_worker`], serving the tasks declared in the crates and modules
/// [`tasks!`](crate::tasks) names (and the built-in ones) — and linking those crates
/// into the binary, which [`run_worker`] alone does not do for a crate `main` never
/// uses. `myapp worker --help` lists the tasks served.
///
/// ```no_run
/// # mod my_tasks { #[docket::task] pub async fn greet(name: String) {} }
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     docket::run_worker_with(docket::tasks!(my_tasks)).await
/// }
/// ```
pub async fn run_worker_with(tasks: TaskModules) -> ExitCode {
    serve_from(std::env::args_os(), Some(&tasks)).await
}

/// Like [`run_worker`], with the arguments given (the first is the program name).
///
/// ```no_run
/// # async fn f() {
/// let code = docket::cli::run_from(["myapp", "worker", "--until-finished"]).await;
/// # }
/// ```
pub async fn run_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    serve_from(args, None).await
}

/// [`run_from`], the worker serving the tasks declared where `serve` says.
async fn serve_from<I, T>(args: I, serve: Option<&TaskModules>) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let tree = command().mut_subcommand("worker", |worker| {
        worker.after_help(worker::served_help(serve))
    });
    match tree.try_get_matches_from(args) {
        Ok(matches) => run_serving(&matches, serve).await,
        Err(error) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
        }
    }
}

/// Runs already-parsed matches of [`command()`] (for a larger command line that mounted
/// it as a subcommand).
pub async fn run_matches(matches: &clap::ArgMatches) -> ExitCode {
    run_serving(matches, None).await
}

async fn run_serving(matches: &clap::ArgMatches, serve: Option<&TaskModules>) -> ExitCode {
    let cli = match Cli::from_arg_matches(matches) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    match dispatch(cli, serve).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A command's failure, as the one line printed after `error: `.
type Outcome = Result<ExitCode, String>;

async fn dispatch(cli: Cli, serve: Option<&TaskModules>) -> Outcome {
    let Cli { global, command } = cli;
    match command {
        Command::Version => {
            println!("docket {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut tree = self::command();
            let name = std::env::args_os()
                .next()
                .and_then(|arg0| {
                    std::path::Path::new(&arg0)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "docket".to_owned());
            clap_complete::generate(shell, &mut tree, name, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            let _telemetry = logging::install(global.logging_level, global.logging_format);
            worker::run(&global, *args, serve).await
        }
        Command::Strike(args) => {
            let _telemetry = logging::install(global.logging_level, global.logging_format);
            admin::strike(&global, &args, true).await
        }
        Command::Restore(args) => {
            let _telemetry = logging::install(global.logging_level, global.logging_format);
            admin::strike(&global, &args, false).await
        }
        other => {
            let _telemetry = logging::install(global.logging_level, global.logging_format);
            let docket = connect_shared(&global, name_of(&other)).await?;
            match other {
                Command::Clear => admin::clear(&docket).await,
                Command::Strikes => admin::strikes(&docket).await,
                Command::DeadLetters(which) => admin::dead_letters(&docket, which).await,
                Command::Snapshot { stats } => admin::snapshot(&docket, stats).await,
                Command::Watch { key } => watch::run(&docket, &key).await,
                Command::Workers(which) => admin::workers(&docket, which).await,
                Command::Tasks(which) => admin::add_builtin(&docket, which).await,
                #[cfg(feature = "dashboard")]
                Command::Dashboard(args) => dashboard(docket, args).await,
                _ => unreachable!("handled above"),
            }
        }
    }
}

fn name_of(command: &Command) -> &'static str {
    match command {
        Command::Worker(_) => "worker",
        Command::Strike(_) => "strike",
        Command::Restore(_) => "restore",
        Command::Clear => "clear",
        Command::Strikes => "strikes",
        Command::DeadLetters(_) => "dead-letters",
        Command::Snapshot { .. } => "snapshot",
        Command::Watch { .. } => "watch",
        Command::Workers(_) => "workers",
        Command::Tasks(_) => "tasks",
        #[cfg(feature = "dashboard")]
        Command::Dashboard(_) => "dashboard",
        Command::Version => "version",
        Command::Completions { .. } => "completions",
    }
}

/// Serves the dashboard until SIGTERM or SIGINT.
#[cfg(feature = "dashboard")]
async fn dashboard(docket: Docket, args: args::DashboardArgs) -> Outcome {
    let addr = std::net::SocketAddr::new(args.bind, args.port);
    let mut dashboard = crate::dashboard::Dashboard::new(docket).read_only(args.read_only);
    if let Some(token) = args.auth_token {
        dashboard = dashboard.auth_token(token);
    }
    eprintln!("docket dashboard on http://{addr}/");
    dashboard
        .serve(addr, async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        })
        .await
        .map_err(|error| error.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// Connects for a command that operates a docket other processes use: `memory://` is
/// refused, since this process's store would only ever be empty.
async fn connect_shared(global: &GlobalArgs, command: &str) -> Result<Docket, String> {
    if let Ok(BackendUrl::Memory { .. }) = BackendUrl::parse(&global.url) {
        return Err(format!(
            "`{command}` cannot use `{}`: a memory:// docket lives inside one process, so \
             this command would only ever see an empty docket of its own; point --url \
             (DOCKET_URL) at the Redis server your workers use (memory:// suits `worker` only)",
            global.url
        ));
    }
    connect(global).await
}

async fn connect(global: &GlobalArgs) -> Result<Docket, String> {
    Docket::connect(global.docket.clone(), global.url.clone())
        .await
        .map_err(|error| cannot_open(global, &error))
}

/// The one line printed when the docket cannot be opened.
fn cannot_open(global: &GlobalArgs, error: &crate::Error) -> String {
    match error {
        // These name the URL themselves.
        crate::Error::Connect { .. }
        | crate::Error::UnsupportedServer { .. }
        | crate::Error::InvalidUrl { .. } => {
            format!("cannot open docket `{}`: {error}", global.docket)
        }
        _ => format!(
            "cannot open docket `{}` at {}: {error}",
            global.docket,
            crate::backend::redact(&global.url)
        ),
    }
}
