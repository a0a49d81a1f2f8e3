//! The command tree, shared by the `docket` binary and every `run_worker()` application.
//!
//! Flag and variable names follow the production guide exactly.

mod strike;
mod worker;

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use strike::StrikeArgs;
pub use worker::WorkerArgs;

use super::duration::parse_duration;
use crate::backend::BackendUrl;

/// The default of `--url`, as in the production guide.
pub const DEFAULT_URL: &str = "redis://localhost:6379/0";
/// The default of `--docket`.
pub const DEFAULT_NAME: &str = "docket";

const AFTER_HELP: &str = "\
Durations accept 90 (seconds), 1.5s, 250ms, 5m, 1h30m, 1d, mm:ss and hh:mm:ss.
Every option can also be set through the environment variable shown with it.";

/// Distributed background tasks: run workers and operate dockets.
#[derive(Debug, Parser)]
#[command(
    name = "docket",
    version,
    about,
    long_about = None,
    after_help = AFTER_HELP,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The docket's name: every key lives under `{NAME}:`.
    #[arg(
        long = "docket",
        env = "DOCKET_NAME",
        default_value = DEFAULT_NAME,
        global = true,
        value_name = "NAME"
    )]
    pub docket: String,

    /// Where the docket lives: redis://, rediss://, unix://, valkey://, valkeys:// or
    /// memory:// (worker only).
    #[arg(
        long,
        env = "DOCKET_URL",
        default_value = DEFAULT_URL,
        global = true,
        value_parser = parse_url,
        hide_env_values = true
    )]
    pub url: String,

    /// Log level: trace, debug, info, warning (or warn), error, critical.
    #[arg(
        long,
        env = "DOCKET_LOGGING_LEVEL",
        default_value = "info",
        global = true,
        value_parser = parse_level,
        value_name = "LEVEL"
    )]
    pub logging_level: tracing::Level,

    /// Log format: `plain` for people, `json` for one object per line.
    #[arg(
        long,
        env = "DOCKET_LOGGING_FORMAT",
        default_value = "plain",
        global = true,
        value_enum,
        ignore_case = true
    )]
    pub logging_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a worker: claim tasks and run them until stopped (SIGTERM/SIGINT drain).
    Worker(Box<WorkerArgs>),
    /// Block matching tasks across every worker (see `restore`).
    Strike(StrikeArgs),
    /// Lift a strike made with `strike`.
    Restore(StrikeArgs),
    /// List the strikes in effect.
    Strikes,
    /// Calls dead-lettered after their workers kept dying: list, retry or purge them.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Delete every queued and scheduled task of the docket.
    Clear,
    /// Show the tasks and workers of the docket.
    Snapshot {
        /// Add per-task counts and the oldest queued task.
        #[arg(long)]
        stats: bool,
    },
    /// Follow one task's state and progress until it finishes.
    Watch {
        /// The task key.
        key: String,
    },
    /// Inspect the workers of the docket.
    #[command(subcommand)]
    Workers(WorkersCommand),
    /// Add a built-in task: check a fleet end to end.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// Serve the web dashboard: what is queued, scheduled and running, runs by key,
    /// dead letters, workers, strikes; and, with a token, act on them.
    #[cfg(feature = "dashboard")]
    Dashboard(DashboardArgs),
    /// Print the version.
    Version,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `docket dead-letters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List them.
    Ls,
    /// Add one again (same key, function and arguments) and forget it.
    Retry {
        /// The task key.
        key: String,
    },
    /// Forget them all.
    Purge,
}

/// `docket workers ...`.
#[derive(Debug, Subcommand)]
pub enum WorkersCommand {
    /// List the workers seen recently.
    Ls,
    /// List the workers that can run TASK.
    ForTask {
        /// The task name.
        task: String,
    },
}

/// When a built-in task should run.
#[derive(Debug, Args)]
pub struct DelayArgs {
    /// Run it this long from now instead of at once.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub delay: Option<Duration>,
}

/// `docket tasks ...`.
#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Add a task that logs MESSAGE on the worker that runs it.
    Trace {
        /// What to log.
        #[arg(default_value = "Hello from docket")]
        message: String,
        #[command(flatten)]
        when: DelayArgs,
    },
    /// Add a task that fails with MESSAGE.
    Fail {
        /// The failure message.
        #[arg(default_value = "This task fails on purpose")]
        message: String,
        #[command(flatten)]
        when: DelayArgs,
    },
    /// Add a task that sleeps SECONDS.
    Sleep {
        /// How long to sleep, in seconds (fractions allowed).
        #[arg(default_value_t = 1.0, value_parser = parse_seconds)]
        seconds: f64,
        #[command(flatten)]
        when: DelayArgs,
    },
}

fn parse_url(text: &str) -> Result<String, String> {
    BackendUrl::parse(text)
        .map(|_| text.to_owned())
        .map_err(|error| error.to_string())
}

pub(super) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration `{text}`: must be greater than zero"
        ));
    }
    Ok(duration)
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!(
            "invalid number of seconds `{text}`: use a number such as 3 or 0.5"
        )),
    }
}

fn parse_level(text: &str) -> Result<tracing::Level, String> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" | "critical" => tracing::Level::ERROR,
        _ => {
            return Err(format!(
                "invalid logging level `{text}`: use trace, debug, info, warning, error or critical"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    pub(super) fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("docket").chain(args.iter().copied()))
    }

    fn worker(args: &[&str]) -> WorkerArgs {
        let mut all = vec!["worker"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Worker(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_tree_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn worker_defaults_are_the_guides() {
        // SAFETY-free: these variables are not set by the test runner.
        let args = worker(&[]);
        assert_eq!(args.concurrency, 10);
        assert_eq!(args.redelivery_timeout, Duration::from_mins(5));
        assert_eq!(args.reconnection_delay, Duration::from_secs(5));
        assert_eq!(args.minimum_check_interval, Duration::from_millis(100));
        assert_eq!(args.scheduling_resolution, Duration::from_millis(250));
        assert!(args.automatic_tasks());
        assert!(!args.until_finished);
        assert_eq!(args.healthcheck_port, None);
        assert!(args.tasks.is_empty());
        assert_eq!(args.execution_ttl, crate::DEFAULT_EXECUTION_TTL);
    }

    #[test]
    fn a_worker_s_own_calls_get_the_ttl_it_is_given() {
        assert_eq!(
            worker(&["--execution-ttl", "0"]).execution_ttl,
            Duration::ZERO
        );
        assert_eq!(
            worker(&["--execution-ttl", "2h"]).execution_ttl,
            Duration::from_hours(2)
        );
        let error = parse(&["worker", "--execution-ttl", "soon"]).unwrap_err();
        assert!(error.to_string().contains("soon"), "{error}");
    }

    #[test]
    fn worker_flags_of_the_guide() {
        let args = worker(&[
            "--name",
            "orders-worker-1",
            "--concurrency",
            "50",
            "--redelivery-timeout",
            "10m",
            "--minimum-check-interval",
            "50ms",
            "--scheduling-resolution",
            "100ms",
            "--healthcheck-port",
            "8080",
            "--metrics-port",
            "9090",
            "--logging-format",
            "json",
            "--tasks",
            "myapp.tasks:all_tasks,myapp::monitoring",
            "--no-schedule-automatic-tasks",
        ]);
        assert_eq!(args.name.as_deref(), Some("orders-worker-1"));
        assert_eq!(args.concurrency, 50);
        assert_eq!(args.redelivery_timeout, Duration::from_mins(10));
        assert_eq!(args.minimum_check_interval, Duration::from_millis(50));
        assert_eq!(args.scheduling_resolution, Duration::from_millis(100));
        assert_eq!(args.healthcheck_port, Some(8080));
        assert_eq!(args.metrics_port, Some(9090));
        assert_eq!(args.tasks, ["myapp.tasks:all_tasks", "myapp::monitoring"]);
        assert!(!args.automatic_tasks());
        let cli = parse(&[
            "worker",
            "--logging-format",
            "JSON",
            "--logging-level",
            "WARNING",
        ])
        .unwrap();
        assert_eq!(cli.global.logging_format, LogFormat::Json);
        assert_eq!(cli.global.logging_level, tracing::Level::WARN);
        assert!(worker(&["--schedule-automatic-tasks"]).automatic_tasks());
        assert!(!worker(&["--schedule-automatic-tasks=false"]).automatic_tasks());
    }

    #[test]
    fn bad_values_are_refused_by_name_before_anything_runs() {
        let cases: [(&[&str], &str); 7] = [
            (
                &["worker", "--redelivery-timeout", "5 minutes"],
                "`5 minutes`",
            ),
            (
                &["worker", "--redelivery-timeout", "0s"],
                "must be greater than zero",
            ),
            (&["worker", "--concurrency", "0"], "0"),
            (&["worker", "--metrics-port", "99999"], "99999"),
            (&["--url", "postgres://db", "worker"], "`postgres://db`"),
            (&["worker", "--logging-level", "loud"], "`loud`"),
            (&["tasks", "sleep", "soon"], "`soon`"),
        ];
        for (args, needle) in cases {
            let error = parse(args).unwrap_err().to_string();
            assert!(error.contains(needle), "{args:?}: {error}");
        }
        let error = parse(&["worker", "--scheduling-resolution", "fast"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("--scheduling-resolution"), "{error}");
        assert!(error.contains("`hh:mm:ss`"), "{error}");
    }

    #[test]
    fn help_lists_every_command_option_and_variable() {
        let help = Cli::command().render_long_help().to_string();
        for command in [
            "worker",
            "strike",
            "restore",
            "strikes",
            "dead-letters",
            "clear",
            "snapshot",
            "watch",
            "workers",
            "tasks",
            "version",
            "completions",
        ] {
            assert!(help.contains(command), "{command} missing from:\n{help}");
        }
        for env in ["DOCKET_NAME", "DOCKET_URL", "DOCKET_LOGGING_LEVEL"] {
            assert!(help.contains(env), "{env} missing from:\n{help}");
        }
        let mut command = Cli::command();
        command.build();
        let help = command
            .find_subcommand_mut("worker")
            .unwrap()
            .render_long_help()
            .to_string();
        for (flag, env) in [
            ("--docket", "DOCKET_NAME"),
            ("--url", "DOCKET_URL"),
            ("--name", "DOCKET_WORKER_NAME"),
            ("--concurrency", "DOCKET_WORKER_CONCURRENCY"),
            ("--redelivery-timeout", "DOCKET_WORKER_REDELIVERY_TIMEOUT"),
            ("--reconnection-delay", "DOCKET_WORKER_RECONNECTION_DELAY"),
            (
                "--minimum-check-interval",
                "DOCKET_WORKER_MINIMUM_CHECK_INTERVAL",
            ),
            (
                "--scheduling-resolution",
                "DOCKET_WORKER_SCHEDULING_RESOLUTION",
            ),
            (
                "--schedule-automatic-tasks",
                "DOCKET_WORKER_SCHEDULE_AUTOMATIC_TASKS",
            ),
            ("--no-schedule-automatic-tasks", ""),
            ("--until-finished", "DOCKET_WORKER_UNTIL_FINISHED"),
            ("--drain-timeout", "DOCKET_WORKER_DRAIN_TIMEOUT"),
            ("--max-deliveries", "DOCKET_WORKER_MAX_DELIVERIES"),
            ("--healthcheck-port", "DOCKET_WORKER_HEALTHCHECK_PORT"),
            ("--metrics-port", "DOCKET_WORKER_METRICS_PORT"),
            ("--logging-level", "DOCKET_LOGGING_LEVEL"),
            ("--logging-format", "DOCKET_LOGGING_FORMAT"),
            ("--tasks", "DOCKET_TASKS"),
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
            assert!(help.contains(env), "{env} missing from:\n{help}");
        }
        for default in [
            "[default: 10]",
            "[default: 5m]",
            "[default: 5s]",
            "[default: 100ms]",
            "[default: 250ms]",
        ] {
            assert!(help.contains(default), "{default} missing from:\n{help}");
        }
    }
}

/// `docket dashboard`.
#[cfg(feature = "dashboard")]
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// The port to listen on.
    #[arg(long, env = "DOCKET_DASHBOARD_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The address to bind: loopback unless told otherwise (`0.0.0.0` for every
    /// interface, behind a proxy that terminates TLS).
    #[arg(long, env = "DOCKET_DASHBOARD_BIND", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Show only: no action buttons, and every POST refused, even with a token.
    #[arg(long, env = "DOCKET_DASHBOARD_READ_ONLY")]
    pub read_only: bool,
    /// The token operators give to act (the login form, or `Authorization: Bearer`).
    /// Without one the dashboard is read-only.
    #[arg(long, env = "DOCKET_DASHBOARD_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
}
