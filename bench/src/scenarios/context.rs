//! What every scenario shares: the bench's context (server, admin connection,
//! settings, fresh names) and the worker child processes it spawns.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use docket::Docket;
use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::CHILD_TIMEOUT;
use crate::child::{ChildReport, Mode, WorkerArgs};
use crate::server::{self, Target};

/// What every scenario shares: the server, an admin connection, the run settings.
pub(crate) struct Bench {
    pub target: Target,
    pub admin: MultiplexedConnection,
    /// The worker program (`docket-bench-worker`) as `cargo build --release` makes it.
    pub exe: PathBuf,
    /// The same program's lean build, when there is one (scenario 6 measures it too).
    pub lean: Option<PathBuf>,
    /// Runs of each scenario.
    pub runs: usize,
    /// Every N divided by 10.
    pub quick: bool,
    /// Makes docket names unique across bench processes.
    tag: String,
    names: usize,
}

impl Bench {
    /// Connects the admin connection to `target`.
    pub(crate) async fn new(
        target: Target,
        workers: (PathBuf, Option<PathBuf>),
        runs: usize,
        quick: bool,
    ) -> Result<Self> {
        let admin = target.connect().await?;
        let (exe, lean) = workers;
        Ok(Self {
            target,
            admin,
            exe,
            lean,
            runs,
            quick,
            tag: format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp()),
            names: 0,
        })
    }

    /// `full`, or a tenth of it with `--quick`.
    pub(crate) fn n(&self, full: usize) -> usize {
        if self.quick { full / 10 } else { full }
    }

    /// A docket name never used before.
    pub(crate) fn fresh_name(&mut self, what: &str) -> String {
        self.names += 1;
        format!("bench-{what}-{}-{}", self.tag, self.names)
    }

    /// Empties the server between runs, when this run started it.
    pub(crate) async fn clean(&mut self) -> Result<()> {
        if self.target.owned {
            server::flushall(&mut self.admin).await?;
        }
        Ok(())
    }

    /// A producer handle on the docket `name`.
    pub(crate) async fn producer(&self, name: &str, ttl: Duration) -> Result<Docket> {
        Ok(Docket::builder(name, self.target.url.as_str())
            .execution_ttl(ttl)
            .connect()
            .await?)
    }

    /// Spawns a worker child on the docket `name` and waits until it is ready.
    pub(crate) async fn spawn_worker(
        &self,
        mode: Mode,
        name: &str,
        concurrency: usize,
        ttl: Duration,
    ) -> Result<WorkerProcess> {
        self.spawn_worker_of(&self.exe, mode, name, concurrency, ttl)
            .await
    }

    /// Spawns the worker program `exe` on the docket `name` and waits until it is ready.
    pub(crate) async fn spawn_worker_of(
        &self,
        exe: &Path,
        mode: Mode,
        name: &str,
        concurrency: usize,
        ttl: Duration,
    ) -> Result<WorkerProcess> {
        let args = WorkerArgs {
            mode,
            url: self.target.url.clone(),
            name: name.to_owned(),
            concurrency,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            tasks: 0,
        };
        WorkerProcess::spawn(exe, &args).await
    }
}

/// The ceilings measured at the start of the run, which the targets are ratios to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ceilings {
    /// `L`: whole queue cycles per second inside one script call, 50 clients.
    pub cycle: f64,
    /// `RTT1`: sequential single-client commands per second.
    pub rtt1: f64,
}

/// The label of an `execution_ttl`: state tracking or fire-and-forget.
pub(crate) fn ttl_label(ttl: Duration) -> &'static str {
    if ttl.is_zero() {
        "fire-and-forget"
    } else {
        "state"
    }
}

/// A worker child process, ready to run.
pub(crate) struct WorkerProcess {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// When it said `ready`.
    ready: Instant,
}

impl WorkerProcess {
    /// Spawns the worker program `exe` with `args` and waits for its `ready` line.
    pub(crate) async fn spawn(exe: &Path, args: &WorkerArgs) -> Result<Self> {
        let mut child = tokio::process::Command::new(exe)
            .args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("spawning the worker child")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout from the worker child"))?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_mins(1), lines.next_line())
            .await
            .context("waiting for the worker child to be ready")??;
        if first.as_deref() != Some("ready") {
            bail!("the worker child said {first:?} instead of ready");
        }
        Ok(Self {
            child,
            lines,
            ready: Instant::now(),
        })
    }

    /// Closes its standard input (a `serve` child stops then), reads its report and waits
    /// for it to exit. Also returns the time from `ready` to its exit.
    pub(crate) async fn finish(mut self) -> Result<(ChildReport, Duration)> {
        drop(self.child.stdin.take());
        let waiting = async {
            let mut last = None;
            while let Some(line) = self.lines.next_line().await? {
                last = Some(line);
            }
            let status = self.child.wait().await?;
            anyhow::Ok((last, status))
        };
        let (last, status) = tokio::time::timeout(CHILD_TIMEOUT, waiting)
            .await
            .context("the worker child took too long")??;
        let wall = self.ready.elapsed();
        if !status.success() {
            bail!("the worker child exited with {status}");
        }
        let last = last.ok_or_else(|| anyhow!("the worker child printed no report"))?;
        let report = serde_json::from_str(&last)
            .with_context(|| format!("the worker child's report: {last}"))?;
        Ok((report, wall))
    }
}
