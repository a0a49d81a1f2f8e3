//! The command line as operators use it: a real application binary (`docket-app`, whose
//! `main` is `docket::run_worker()`) against a `redis-server` this test starts. This
//! module is the harness; the tests are in its submodules.

mod commands;
mod dashboard;
mod faults;
mod fleet;
mod logging;
mod metrics;
mod observability;
mod stopping;

use std::process::{Output, Stdio};
use std::time::Duration;

use docket::{Docket, ExecutionState};
use tokio::process::{Child, Command};

use crate::support::{RedisServer, Target, wait_for};

const APP: &str = env!("CARGO_BIN_EXE_docket-app");

/// What a worker logs while the docket's server is not there yet.
const WAITING_FOR_REDIS: &str = "cannot reach the docket yet; waiting";

/// A docket on its own server, and the command line pointed at it.
struct Cli {
    target: Target,
}

impl Cli {
    fn new() -> Self {
        Self {
            target: Target::redis_with(RedisServer::start()),
        }
    }

    /// The app with `--url`/`--docket` given through the guide's variables.
    fn command(&self, args: &[&str]) -> Command {
        self.program(APP, args)
    }

    /// Another binary of the suite, as [`command`](Self::command) runs the app.
    fn program(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOCKET_URL", &self.target.url)
            .env("DOCKET_NAME", &self.target.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs a command to its end (bounded), returning its output.
    async fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).spawn().expect("start docket-app");
        finish(child, Duration::from_secs(30), args).await
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "{args:?} failed ({}):\n{}{}",
            output.status,
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// A worker process, left running.
    fn worker(&self, extra: &[&str]) -> Child {
        let mut args = vec![
            "worker",
            "--minimum-check-interval",
            "20ms",
            "--scheduling-resolution",
            "20ms",
        ];
        args.extend_from_slice(extra);
        self.command(&args).spawn().expect("start a worker")
    }

    async fn docket(&self) -> Docket {
        self.target.docket().await
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn finish(child: Child, within: Duration, what: &[&str]) -> Output {
    tokio::time::timeout(within, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what:?} did not end within {within:?}"))
        .expect("wait for docket-app")
}

/// The key printed by `tasks ...`: `added trace task KEY to docket ...`.
fn added_key(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no key in {stdout:?}"))
        .to_owned()
}

fn sigterm(child: &Child) {
    signal(child, "TERM");
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("the worker is running");
    docket_testkit::signal(pid, name).unwrap_or_else(|error| panic!("SIG{name}: {error}"));
}

async fn wait_for_state(docket: &Docket, key: &str, state: ExecutionState) {
    let what = format!("{key} to become {state:?}");
    wait_for(Duration::from_secs(20), &what, || async {
        let now = match docket.get_execution(key).await.unwrap() {
            Some(execution) => Some(execution.state().await.unwrap()),
            None => None,
        };
        if now == Some(state) { Ok(()) } else { Err(now) }
    })
    .await;
}
