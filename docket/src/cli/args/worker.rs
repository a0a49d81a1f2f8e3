//! `docket worker`'s options, named as the production guide names them.

use std::time::Duration;

use clap::Args;
use clap::builder::BoolishValueParser;

use super::parse_positive_duration;
use crate::cli::duration::parse_duration;

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
    /// `myapp.billing`, `myapp.billing:charge`), comma-separated [default: every task
    /// this binary serves, listed below]. The built-in tasks are always included.
    #[arg(
        long,
        env = "DOCKET_TASKS",
        value_delimiter = ',',
        value_name = "TASKS"
    )]
    pub tasks: Vec<String>,

    /// How long a call may wait for a worker that serves its task (this one hands such
    /// calls back) before it is dead-lettered, while no live worker serves it.
    #[arg(
        long,
        env = "DOCKET_WORKER_UNSERVED_GRACE",
        default_value = "10m",
        value_parser = parse_positive_duration,
        value_name = "DURATION"
    )]
    pub unserved_grace: Duration,

    /// How long the records and results of the calls this worker adds itself (automatic
    /// perpetual and cron tasks) are kept after their runs end; 0 keeps none. Every
    /// other call keeps the TTL its producer chose, and its retries and next runs
    /// inherit it.
    #[arg(
        long,
        env = "DOCKET_EXECUTION_TTL",
        default_value = "15m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub execution_ttl: Duration,
}

impl WorkerArgs {
    /// Whether automatic tasks are scheduled, `--no-...` winning.
    pub fn automatic_tasks(&self) -> bool {
        self.schedule_automatic_tasks && !self.no_schedule_automatic_tasks
    }
}
