//! The command tree, shared by the `docket` binary and every `run_worker()` application.
//!
//! Flag and variable names follow the production guide exactly.

use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;

use super::duration::parse_duration;
use super::values::parse_strike_value;
use crate::backend::BackendUrl;
use crate::strikes::Operator;

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
    /// Print the version.
    Version,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `docket worker`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)]
pub struct WorkerArgs {
    /// A unique name for this worker [default: host#pid#n].
    #[arg(long, env = "DOCKET_WORKER_NAME")]
    pub name: Option<String>,

    /// How many tasks run at once.
    #[arg(
        long,
        env = "DOCKET_WORKER_CONCURRENCY",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub concurrency: u32,

    /// How long a claimed task may go without its worker renewing it before another
    /// worker takes it over.
    #[arg(
        long,
        env = "DOCKET_WORKER_REDELIVERY_TIMEOUT",
        default_value = "5m",
        value_parser = parse_positive_duration,
        value_name = "DURATION"
    )]
    pub redelivery_timeout: Duration,

    /// How long to wait before reconnecting after losing Redis.
    #[arg(
        long,
        env = "DOCKET_WORKER_RECONNECTION_DELAY",
        default_value = "5s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub reconnection_delay: Duration,

    /// The shortest pause between checks for work when the queue is empty.
    #[arg(
        long,
        env = "DOCKET_WORKER_MINIMUM_CHECK_INTERVAL",
        default_value = "100ms",
        value_parser = parse_positive_duration,
        value_name = "DURATION"
    )]
    pub minimum_check_interval: Duration,

    /// How often future tasks are moved to the queue when they fall due.
    #[arg(
        long,
        env = "DOCKET_WORKER_SCHEDULING_RESOLUTION",
        default_value = "250ms",
        value_parser = parse_positive_duration,
        value_name = "DURATION"
    )]
    pub scheduling_resolution: Duration,

    /// Start automatic perpetual and cron tasks [default: on].
    #[arg(
        long,
        env = "DOCKET_WORKER_SCHEDULE_AUTOMATIC_TASKS",
        num_args = 0..=1,
        default_value = "true",
        default_missing_value = "true",
        value_parser = BoolishValueParser::new(),
        overrides_with = "no_schedule_automatic_tasks",
        value_name = "BOOL",
        hide_default_value = true
    )]
    pub schedule_automatic_tasks: bool,

    /// Do not start automatic perpetual and cron tasks.
    #[arg(long, overrides_with = "schedule_automatic_tasks")]
    pub no_schedule_automatic_tasks: bool,

    /// Exit 0 once nothing is queued, scheduled or running.
    #[arg(long, env = "DOCKET_WORKER_UNTIL_FINISHED")]
    pub until_finished: bool,

    /// How long a stopping worker lets running tasks finish before leaving them for
    /// redelivery.
    #[arg(
        long,
        env = "DOCKET_WORKER_DRAIN_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub drain_timeout: Duration,

    /// Deliveries of one run (the first, and redeliveries after its worker died) before
    /// it is dead-lettered: recorded FAILED instead of handed to another worker.
    #[arg(
        long,
        env = "DOCKET_WORKER_MAX_DELIVERIES",
        default_value_t = crate::client::DEFAULT_MAX_DELIVERIES,
        value_parser = clap::value_parser!(u32).range(1..),
        value_name = "N"
    )]
    pub max_deliveries: u32,

    /// Serve the health check (`GET /`) on this port.
    #[arg(
        long,
        env = "DOCKET_WORKER_HEALTHCHECK_PORT",
        value_parser = clap::value_parser!(u16).range(1..),
        value_name = "PORT"
    )]
    pub healthcheck_port: Option<u16>,

    /// Serve Prometheus metrics (`GET /metrics`) on this port.
    #[arg(
        long,
        env = "DOCKET_WORKER_METRICS_PORT",
        value_parser = clap::value_parser!(u16).range(1..),
        value_name = "PORT"
    )]
    pub metrics_port: Option<u16>,

    /// Run only these tasks: task names or module paths (`myapp::billing`,
    /// `myapp.billing`, `myapp.billing:charge`), comma-separated [default: all]. The
    /// built-in tasks are always included.
    #[arg(
        long,
        env = "DOCKET_TASKS",
        value_delimiter = ',',
        value_name = "TASKS"
    )]
    pub tasks: Vec<String>,
}

impl WorkerArgs {
    /// Whether automatic tasks are scheduled, `--no-...` winning.
    pub fn automatic_tasks(&self) -> bool {
        self.schedule_automatic_tasks && !self.no_schedule_automatic_tasks
    }
}

/// `docket strike` / `docket restore`:
/// `TASK`, `TASK PARAMETER OPERATOR VALUE`, or `PARAMETER OPERATOR VALUE` for every task.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  docket strike process_order
  docket strike process_order customer_id == problematic-customer
  docket strike customer_id == int:42          (every task with a customer_id)
  docket strike charge amount between json:[100,500]

Values: int:7, float:1.5, bool:true, json:[1,10]; plain text is a string.")]
pub struct StrikeArgs {
    /// TASK, then optionally PARAMETER OPERATOR VALUE; or only PARAMETER OPERATOR VALUE.
    #[arg(required = true, num_args = 1..=4, value_name = "TASK | PARAMETER OPERATOR VALUE")]
    pub words: Vec<String>,
}

/// A strike instruction as the operator typed it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct StrikeSpec {
    /// The task, or every task.
    pub task: Option<String>,
    /// The parameter condition, or the whole task.
    pub condition: Option<(String, Operator, Value)>,
}

impl StrikeArgs {
    /// Reads the words as a strike instruction.
    ///
    /// # Errors
    /// A message naming the word that does not fit.
    pub fn spec(&self) -> Result<StrikeSpec, String> {
        let condition = |parameter: &str, operator: &str, value: &str| {
            let operator: Operator = operator.parse()?;
            let value = parse_strike_value(value)?;
            super::values::check_strike_value(operator, &value)?;
            Ok::<_, String>((parameter.to_owned(), operator, value))
        };
        let nonempty = |text: &str, what: &str| {
            if text.trim().is_empty() {
                Err(format!("the {what} cannot be empty"))
            } else {
                Ok(text.to_owned())
            }
        };
        match self.words.as_slice() {
            [task] => Ok(StrikeSpec {
                task: Some(nonempty(task, "task name")?),
                condition: None,
            }),
            [parameter, operator, value] => Ok(StrikeSpec {
                task: None,
                condition: Some(condition(
                    &nonempty(parameter, "parameter")?,
                    operator,
                    value,
                )?),
            }),
            [task, parameter, operator, value] => Ok(StrikeSpec {
                task: Some(nonempty(task, "task name")?),
                condition: Some(condition(
                    &nonempty(parameter, "parameter")?,
                    operator,
                    value,
                )?),
            }),
            words => Err(format!(
                "expected TASK, TASK PARAMETER OPERATOR VALUE or PARAMETER OPERATOR VALUE, \
                 got {} words: {}",
                words.len(),
                words.join(" ")
            )),
        }
    }
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

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
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
    use serde_json::json;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
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
    fn strike_words() {
        let spec = |words: &[&str]| {
            let mut all = vec!["strike"];
            all.extend_from_slice(words);
            match parse(&all).unwrap().command {
                Command::Strike(args) => args.spec(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            spec(&["process_order"]).unwrap(),
            StrikeSpec {
                task: Some("process_order".into()),
                condition: None
            }
        );
        assert_eq!(
            spec(&["process_order", "customer_id", "==", "problematic-customer"]).unwrap(),
            StrikeSpec {
                task: Some("process_order".into()),
                condition: Some((
                    "customer_id".into(),
                    Operator::Equal,
                    json!("problematic-customer")
                )),
            }
        );
        assert_eq!(
            spec(&["amount", "between", "json:[1,10]"]).unwrap(),
            StrikeSpec {
                task: None,
                condition: Some(("amount".into(), Operator::Between, json!([1, 10]))),
            }
        );
        let error = spec(&["a", "b"]).unwrap_err();
        assert!(error.contains("got 2 words: a b"), "{error}");
        let error = spec(&["task", "n", "~=", "1"]).unwrap_err();
        assert!(error.contains("`~=`"), "{error}");
        let error = spec(&["task", "n", "==", "int:x"]).unwrap_err();
        assert!(error.contains("`int:x`"), "{error}");
        let error = spec(&["n", "between", "int:3"]).unwrap_err();
        assert!(error.contains("two-element array"), "{error}");
        assert!(parse(&["strike", "a", "b", "c", "d", "e"]).is_err());
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
