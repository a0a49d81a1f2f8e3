//! The command line as operators use it: a real application binary (`docket-app`, whose
//! `main` is `docket::run_worker()`) against a `redis-server` this test starts.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use docket::{Docket, ExecutionState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use docket_testkit::LogWatch;

use crate::support::{RedisServer, Target, free_port, parse_metrics, record_of, series_sum, whole};

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
        let mut command = Command::new(APP);
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

async fn wait_for_state(docket: &Docket, key: &str, state: ExecutionState) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = match docket.get_execution(key).await.unwrap() {
            Some(execution) => Some(execution.state().await.unwrap()),
            None => None,
        };
        if now == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key} never became {state:?} (is {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_then_worker_until_finished_runs_it_and_exits_0() {
    let cli = Cli::new();
    let added = cli.ok(&["tasks", "trace", "hi"]).await;
    assert!(added.starts_with("added trace task "), "{added}");
    let key = added_key(&added);

    let worker = cli.worker(&["--until-finished", "--logging-format", "json"]);
    let output = finish(worker, Duration::from_secs(30), &["worker"]).await;
    let logs = text(&output.stderr);
    assert!(output.status.success(), "{}\n{logs}", output.status);
    // JSON logging: one object per line, the trace among them, runs with docket fields.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let started = lines
        .iter()
        .find(|l| l["message"] == "task started")
        .unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(started["docket.key"], key.as_str(), "{started}");
    assert_eq!(started["docket.task"], "trace", "{started}");
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "task finished" && l["docket.key"] == key.as_str()),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "trace: hi" || l["message"] == "trace: hi"),
        "{logs}"
    );
    let docket = cli.docket().await;
    let execution = docket.get_execution(&key).await.unwrap().unwrap();
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_shows_queued_and_future_tasks_and_clear_empties_the_docket() {
    let cli = Cli::new();
    let queued = added_key(&cli.ok(&["tasks", "trace", "now"]).await);
    let later = added_key(&cli.ok(&["tasks", "sleep", "2", "--delay", "10m"]).await);
    cli.ok(&["tasks", "fail", "boom", "--delay", "1h30m"]).await;

    let snapshot = cli.ok(&["snapshot"]).await;
    assert!(
        snapshot.contains("0 running, 1 queued, 2 scheduled"),
        "{snapshot}"
    );
    let line = |key: &str| {
        snapshot
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key} missing from\n{snapshot}"))
            .to_owned()
    };
    assert!(line(&queued).contains("trace"), "{snapshot}");
    assert!(line(&queued).contains("QUEUED"), "{snapshot}");
    assert!(line(&later).contains("sleep"), "{snapshot}");
    assert!(line(&later).contains("SCHEDULED"), "{snapshot}");
    assert!(line(&later).contains("(in 9m"), "{snapshot}");
    for column in ["WHEN", "TASK", "KEY", "STATE", "WORKER", "STARTED"] {
        assert!(snapshot.contains(column), "{column}: {snapshot}");
    }

    let stats = cli.ok(&["snapshot", "--stats"]).await;
    assert!(stats.contains("per task:"), "{stats}");
    let trace = stats
        .lines()
        .find(|l| l.starts_with("trace "))
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(
        trace.split_whitespace().take(4).collect::<Vec<_>>(),
        ["trace", "0", "1", "0"]
    );
    assert!(stats.contains("oldest queued task has waited"), "{stats}");

    let cleared = cli.ok(&["clear"]).await;
    assert!(
        cleared.starts_with("cleared 3 queued and scheduled tasks"),
        "{cleared}"
    );
    let after = cli.ok(&["snapshot"]).await;
    assert!(
        after.contains("0 running, 0 queued, 0 scheduled"),
        "{after}"
    );
    assert!(after.contains("no tasks"), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_ls_shows_a_running_worker_with_its_tasks() {
    let cli = Cli::new();
    let idle = cli.ok(&["workers", "ls"]).await;
    assert!(idle.starts_with("no workers are running"), "{idle}");

    let worker = cli.worker(&["--name", "cli-worker-1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let listed = cli.ok(&["workers", "ls"]).await;
        if listed.contains("cli-worker-1") {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "the worker never showed up: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The app's own task and the built-in ones.
    for task in ["app_greet", "fail", "sleep", "trace"] {
        assert!(listed.contains(task), "{task}: {listed}");
    }
    let for_task = cli.ok(&["workers", "for-task", "app_greet"]).await;
    assert!(for_task.contains("cli-worker-1"), "{for_task}");
    let none = cli.ok(&["workers", "for-task", "no_such_task"]).await;
    assert!(none.contains("no workers of docket"), "{none}");
    assert!(none.contains("`no_such_task`"), "{none}");

    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(20), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let after = cli.ok(&["workers", "ls"]).await;
    assert!(
        after.starts_with("no workers are running"),
        "a stopped worker leaves: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_sleep_finish_then_exits_0() {
    let cli = Cli::new();
    let key = added_key(&cli.ok(&["tasks", "sleep", "3"]).await);
    let docket = cli.docket().await;
    let worker = cli.worker(&["--drain-timeout", "30s"]);
    wait_for_state(&docket, &key, ExecutionState::Running).await;
    let signalled = Instant::now();
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(20), &["worker"]).await;
    let logs = text(&output.stderr);
    assert!(output.status.success(), "{}\n{logs}", output.status);
    assert!(logs.contains("SIGTERM"), "{logs}");
    let execution = docket.get_execution(&key).await.unwrap().unwrap();
    assert_eq!(
        execution.state().await.unwrap(),
        ExecutionState::Completed,
        "the drain let the sleep finish"
    );
    // It waited for the sleep rather than leaving at once.
    assert!(signalled.elapsed() > Duration::from_millis(500), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_a_task_to_its_end_one_line_per_change() {
    let cli = Cli::new();
    let key = added_key(&cli.ok(&["tasks", "sleep", "0.5"]).await);
    let mut watcher = cli.command(&["watch", &key]).spawn().unwrap();
    // The worker starts once the watcher has printed the task's current state.
    let mut stdout = tokio::io::BufReader::new(watcher.stdout.take().unwrap());
    let mut printed = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut printed))
        .await
        .expect("watch printed nothing within 30 s")
        .unwrap();
    let mut worker = cli.worker(&[]);
    tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut printed))
        .await
        .unwrap_or_else(|_| panic!("watch did not end within 30 s: {printed}"))
        .unwrap();
    let output = finish(watcher, Duration::from_secs(30), &["watch"]).await;
    assert!(output.status.success(), "{printed}{}", text(&output.stderr));
    let lines: Vec<&str> = printed.lines().collect();
    assert!(lines.len() >= 2, "{printed}");
    assert!(
        lines.first().unwrap().contains(&format!("{key} QUEUED")),
        "{printed}"
    );
    assert!(lines.iter().any(|l| l.contains("RUNNING on ")), "{printed}");
    assert!(lines.last().unwrap().contains("COMPLETED"), "{printed}");

    let failed = added_key(&cli.ok(&["tasks", "fail", "on purpose"]).await);
    let output = cli.run(&["watch", &failed]).await;
    let printed = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("FAILED"), "{printed}");
    assert!(printed.contains("on purpose"), "{printed}");
    worker.kill().await.unwrap();

    let missing = cli.run(&["watch", "no-such-key"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no task with key `no-such-key`"),
        "{}",
        text(&missing.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_port_answers_while_the_worker_runs() {
    let cli = Cli::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut worker = cli.worker(&["--healthcheck-port", &port.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            // 503 "unhealthy" until the worker's first call to the docket succeeds.
            if answer.starts_with("HTTP/1.1 200") {
                break answer;
            }
        }
        assert!(Instant::now() < deadline, "no health answer on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(answer.contains("\"status\":\"healthy\""), "{answer}");
    assert!(
        answer.contains(&format!("\"docket\":\"{}\"", cli.target.name)),
        "{answer}"
    );
    worker.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_by_name_before_connecting() {
    // No server at all: each refusal happens before any connection is tried.
    let cli = Cli {
        target: Target {
            name: "nowhere".into(),
            url: "redis://127.0.0.1:1/0".into(),
            redis: None,
        },
    };
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["worker", "--redelivery-timeout", "5 minutes"],
            2,
            "invalid duration `5 minutes`",
        ),
        (&["worker", "--metrics-port", "70000"], 2, "70000"),
        (&["--url", "mysql://db", "snapshot"], 2, "`mysql://db`"),
        (
            &["strike", "process_order", "customer_id", "==", "int:abc"],
            1,
            "invalid strike value `int:abc`",
        ),
        (
            &["strike", "charge", "amount", "between", "int:5"],
            1,
            "two-element array",
        ),
        (
            &["--url", "memory://x", "snapshot"],
            1,
            "`snapshot` cannot use `memory://x`",
        ),
        (&["worker", "--tasks", "nope"], 1, "`nope` matches no task"),
    ];
    for (args, code, needle) in cases {
        let output = cli.run(args).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            stderr.trim_end().lines().count() <= 3,
            "one clear error: {stderr}"
        );
    }
    // An unreachable server is one line too, at once, naming the docket and the URL.
    let started = Instant::now();
    let output = cli.run(&["snapshot"]).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("redis://127.0.0.1:1/0"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_version_and_completions() {
    let cli = Cli {
        target: Target::memory(),
    };
    // The binary prints the tree the library defines (whose contents the unit tests
    // check command by command).
    let help = cli.ok(&["--help"]).await;
    let tree = docket::cli::command();
    let commands: Vec<String> = tree
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    for command in &commands {
        assert!(help.contains(command.as_str()), "{command}: {help}");
    }
    let worker_help = cli.ok(&["worker", "--help"]).await;
    for variable in [
        "DOCKET_WORKER_CONCURRENCY",
        "DOCKET_WORKER_REDELIVERY_TIMEOUT",
        "DOCKET_WORKER_HEALTHCHECK_PORT",
        "DOCKET_LOGGING_FORMAT",
        "DOCKET_TASKS",
    ] {
        assert!(worker_help.contains(variable), "{variable}: {worker_help}");
    }
    let version = cli.ok(&["version"]).await;
    assert!(version.starts_with("docket 0."), "{version}");
    let bash = cli.ok(&["completions", "bash"]).await;
    assert!(bash.contains("docket-app"), "{bash}");
    assert!(bash.contains("snapshot"), "{bash}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_worker_runs_its_own_tasks_from_the_environment() {
    // memory:// is allowed for `worker`: the in-process docket is empty, so
    // --until-finished returns at once; the variables of the guide are read.
    let cli = Cli {
        target: Target::memory(),
    };
    let output = cli
        .command(&["worker", "--until-finished"])
        .env("DOCKET_WORKER_NAME", "env-named")
        .env("DOCKET_WORKER_CONCURRENCY", "3")
        .env("DOCKET_TASKS", "app_greet")
        .spawn()
        .unwrap();
    let output = finish(output, Duration::from_secs(20), &["worker"]).await;
    let logs = text(&output.stderr);
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains("env-named"), "{logs}");
    assert!(logs.contains("concurrency=3"), "{logs}");
    assert!(logs.contains("app_greet"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_redis_waits_for_it() {
    let port = free_port();
    let cli = Cli {
        target: Target {
            name: crate::support::unique("early"),
            url: format!("redis://127.0.0.1:{port}/0"),
            redis: None,
        },
    };
    let mut worker = cli.worker(&["--until-finished", "--reconnection-delay", "100ms"]);
    let log = LogWatch::new(worker.stderr.take().unwrap());
    log.wait_for_line(Duration::from_secs(20), WAITING_FOR_REDIS)
        .await;
    let server = RedisServer::builder().port(port).start();
    let output = finish(worker, Duration::from_secs(20), &["worker"]).await;
    let logs = log.text().await;
    assert!(output.status.success(), "{logs}");
    assert!(logs.contains(WAITING_FOR_REDIS), "{logs}");
    assert!(logs.contains("worker starting"), "{logs}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_for_redis_exits_0() {
    let cli = Cli {
        target: Target {
            name: crate::support::unique("never"),
            url: format!("redis://127.0.0.1:{}/0", free_port()),
            redis: None,
        },
    };
    let mut worker = cli.worker(&["--reconnection-delay", "100ms"]);
    let log = LogWatch::new(worker.stderr.take().unwrap());
    log.wait_for_line(Duration::from_secs(20), WAITING_FOR_REDIS)
        .await;
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(10), &["worker"]).await;
    let logs = log.text().await;
    assert!(output.status.success(), "{logs}");
    assert!(
        logs.contains("stopping before the docket could be reached"),
        "{logs}"
    );
}

/// One run of `app_tick`, from its log: (start ms, end ms, generation, redelivered).
fn tick_runs(log: &std::path::Path) -> Vec<(u128, Option<u128>, u64, bool)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: Vec<(u128, Option<u128>, u64, bool)> = Vec::new();
    // Only whole lines: the worker may be writing the last one as we read.
    let whole = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
    for line in whole.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (at, what, generation, redelivered) = (
            parts[0].parse().unwrap(),
            parts[1],
            parts[2].parse().unwrap(),
            parts[3] == "true",
        );
        if what == "start" {
            runs.push((at, None, generation, redelivered));
        } else if let Some(run) = runs
            .iter_mut()
            .rev()
            .find(|r| r.2 == generation && r.1.is_none())
        {
            run.1 = Some(at);
        }
    }
    runs
}

/// kill -9 of the worker running a perpetual task: after the redelivery timeout another
/// worker takes the run over, and the chain goes on as one chain — no two runs overlap,
/// one copy of the key is ever waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_of_a_perpetual_task_leaves_exactly_one_chain() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let log = std::env::temp_dir().join(format!("{}.ticks", cli.target.name));
    let log_text = log.to_string_lossy().into_owned();
    docket
        .add(crate::tasks::AppTick::new(log_text))
        .key("tick")
        .await
        .unwrap();
    let mut first = cli.worker(&["--name", "doomed", "--redelivery-timeout", "1s"]);
    // Wait for a run in progress (a start without its end), past the first one.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = tick_runs(&log);
        if runs.len() >= 2 && runs.last().unwrap().1.is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "app_tick never ran: {runs:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.start_kill().unwrap(); // SIGKILL
    first.wait().await.unwrap();
    let killed_at = tick_runs(&log).len();

    let second = cli.worker(&["--name", "survivor", "--redelivery-timeout", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tick_runs(&log).len() < killed_at + 5 {
        assert!(
            Instant::now() < deadline,
            "the chain did not go on: {:?}",
            tick_runs(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sigterm(&second);
    let output = finish(second, Duration::from_secs(20), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));

    let runs = tick_runs(&log);
    let _ = std::fs::remove_file(&log);
    // The killed run was taken over: same generation, redelivered.
    let killed = runs[killed_at - 1];
    let retaken = runs[killed_at];
    assert!(killed.1.is_none(), "{runs:?}");
    assert_eq!(
        retaken.2, killed.2,
        "the same run was redelivered: {runs:?}"
    );
    assert!(retaken.3, "{runs:?}");
    // One chain: generations go up by one, and each run starts after the last ended.
    for pair in runs[killed_at..].windows(2) {
        assert_eq!(pair[1].2, pair[0].2 + 1, "{runs:?}");
        assert!(
            pair[1].0 >= pair[0].1.unwrap(),
            "overlapping runs: {runs:?}"
        );
    }
    // And exactly one copy of the key waits.
    let mut redis = cli.target.redis.as_ref().unwrap().connection();
    let prefix = cli.target.name.clone();
    let entries: Vec<(String, Vec<(String, String)>)> = ::redis::cmd("XRANGE")
        .arg(format!("{prefix}:stream"))
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    let queued = entries
        .iter()
        .filter(|(_, fields)| fields.iter().any(|(f, v)| f == "key" && v == "tick"))
        .count();
    let parked: Option<f64> = ::redis::cmd("ZSCORE")
        .arg(format!("{prefix}:queue"))
        .arg("tick")
        .query(&mut redis)
        .unwrap();
    assert_eq!(
        queued + usize::from(parked.is_some()),
        1,
        "{entries:?} {parked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strike_blocks_a_task_and_restore_lets_it_run() {
    let cli = Cli::new();
    let struck = cli.ok(&["strike", "sleep"]).await;
    assert!(struck.starts_with("struck `sleep`"), "{struck}");
    assert!(struck.contains("strikes in effect:"), "{struck}");
    let refused = cli.ok(&["tasks", "sleep", "1"]).await;
    assert!(refused.starts_with("struck sleep task"), "{refused}");
    assert!(refused.contains("nothing was added"), "{refused}");
    let listed = cli.ok(&["strikes"]).await;
    assert!(listed.lines().any(|l| l.starts_with("sleep ")), "{listed}");

    // A typed parameter strike on another task, then restore of the first.
    let typed = cli
        .ok(&["strike", "trace", "message", "==", "str:int:7"])
        .await;
    assert!(typed.contains("trace message == \"int:7\""), "{typed}");
    let restored = cli.ok(&["restore", "sleep"]).await;
    assert!(restored.starts_with("restored `sleep`"), "{restored}");
    let listed = cli.ok(&["strikes"]).await;
    assert!(!listed.lines().any(|l| l.starts_with("sleep ")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("trace ")), "{listed}");

    let key = added_key(&cli.ok(&["tasks", "sleep", "0.2"]).await);
    let worker = cli.worker(&["--until-finished"]);
    let output = finish(worker, Duration::from_secs(30), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let docket = cli.docket().await;
    let execution = docket.get_execution(&key).await.unwrap().unwrap();
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
}

/// GET `path` on a loopback port; the whole answer, or `None` when nothing listens.
async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer)
}

fn scrape(answer: &str) -> prometheus_parse::Scrape {
    parse_metrics(answer.split_once("\r\n\r\n").map_or("", |(_, body)| body))
}

/// A counter or gauge of this docket, for one task when `task` is given.
fn sample(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    docket: &str,
    task: Option<&str>,
) -> u64 {
    let labels: Vec<(&str, &str)> = task.map(|t| ("docket_task", t)).into_iter().collect();
    series_sum(scrape, metric, docket, &labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_run_with_their_labels() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let name = cli.target.name.clone();
    for n in 0..12 {
        docket
            .add(docket::task::builtin::Trace::new(format!("hello {n}")))
            .await
            .unwrap();
    }
    for n in 0..5 {
        docket
            .add(docket::task::builtin::Fail::new(format!("boom {n}")))
            .await
            .unwrap();
    }
    for n in 0..3 {
        docket.add(crate::tasks::AppFlaky::new(n)).await.unwrap();
    }
    let port = free_port();
    let mut worker = cli.worker(&["--name", "metered", "--metrics-port", &port.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let scraped = loop {
        if let Some(answer) = http_get(port, "/metrics").await {
            let scraped = scrape(&answer);
            if sample(&scraped, "docket_tasks_completed_total", &name, None) >= 23 {
                break scraped;
            }
        }
        assert!(Instant::now() < deadline, "the runs never all completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    worker.kill().await.unwrap();
    let expect = |metric: &str, task: &str, value: u64| {
        assert_eq!(
            sample(&scraped, metric, &name, Some(task)),
            value,
            "{metric}{{{task}}}"
        );
    };
    expect("docket_tasks_started_total", "trace", 12);
    expect("docket_tasks_succeeded_total", "trace", 12);
    expect("docket_tasks_failed_total", "fail", 5);
    expect("docket_tasks_started_total", "app_flaky", 6);
    expect("docket_tasks_failed_total", "app_flaky", 6);
    expect("docket_tasks_retried_total", "app_flaky", 3);
    expect("docket_tasks_completed_total", "app_flaky", 6);
    // The guide's queries use the plain name.
    assert_eq!(sample(&scraped, "docket_tasks_completed", &name, None), 23);
    let started = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "docket_tasks_started_total" && s.labels.get("docket_name") == Some(&*name)
        })
        .unwrap();
    assert_eq!(started.labels.get("docket_worker"), Some("metered"));
    assert!(matches!(started.value, prometheus_parse::Value::Counter(_)));
    let durations = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "docket_task_duration"
                && s.labels.get("docket_task") == Some("trace")
                && s.labels.get("docket_name") == Some(&*name)
        })
        .expect("a duration histogram");
    let prometheus_parse::Value::Histogram(buckets) = &durations.value else {
        panic!("{durations:?}");
    };
    assert_eq!(whole(buckets.last().unwrap().count), 12);
    assert!(
        scraped.samples.iter().any(
            |s| s.metric == "docket_queue_depth" && s.labels.get("docket_name") == Some(&*name)
        ),
        "the queue depth gauge is refreshed by heartbeats"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_without_redis_and_200_when_it_returns() {
    let mut cli = Cli::new();
    let port = free_port();
    let worker = cli.worker(&[
        "--healthcheck-port",
        &port.to_string(),
        "--reconnection-delay",
        "100ms",
    ]);
    let status = |answer: &Option<String>| {
        answer
            .as_deref()
            .and_then(|a| a.split_whitespace().nth(1))
            .and_then(|code| code.parse::<u16>().ok())
    };
    let wait_for = |code: u16, within: Duration| async move {
        let deadline = Instant::now() + within;
        loop {
            let answer = http_get(port, "/").await;
            if status(&answer) == Some(code) {
                return answer.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "health never answered {code}: {answer:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_for(200, Duration::from_secs(20)).await;
    let ready = http_get(port, "/ready").await.unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    cli.target.redis.as_mut().unwrap().kill();
    let down = Instant::now();
    let answer = wait_for(503, Duration::from_secs(5)).await;
    println!("health 503 {:?} after Redis stopped", down.elapsed());
    assert!(answer.contains("lost the connection"), "{answer}");

    cli.target.redis.as_mut().unwrap().restart();
    wait_for(200, Duration::from_secs(20)).await;
    sigterm(&worker);
    let output = tokio::time::timeout(Duration::from_secs(20), worker.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = text(&output.stderr);
    assert!(logs.contains("lost the connection to the docket"), "{logs}");
    assert!(logs.contains("connection to the docket restored"), "{logs}");
}

/// A stand-in OTLP/HTTP collector: answers 200 to every request and keeps them.
async fn fake_collector() -> (u16, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&chunk[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if data.len() < end + 4 + length {
                        continue;
                    }
                    let body = data[end + 4..end + 4 + length].to_vec();
                    let _ = sender.send((head, body));
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    data.drain(..end + 4 + length);
                }
            });
        }
    });
    (port, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_exports_spans_over_otlp_when_the_endpoint_is_set() {
    let cli = Cli::new();
    cli.ok(&["tasks", "trace", "exported"]).await;
    let (port, mut received) = fake_collector().await;
    let worker = cli
        .command(&["worker", "--until-finished"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_SERVICE_NAME", "docket-e2e")
        .spawn()
        .unwrap();
    let output = finish(worker, Duration::from_secs(30), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the worker exported its spans before exiting")
        .unwrap();
    assert!(head.starts_with("POST /v1/traces "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("application/x-protobuf"),
        "{head}"
    );
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"docket.task.trace"), "the run's span was exported");
    assert!(has(b"docket-e2e"), "with the service name");
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("the worker is running");
    docket_testkit::signal(pid, name).unwrap_or_else(|error| panic!("SIG{name}: {error}"));
}

/// SIGSTOP a worker mid-run past its redelivery timeout: another worker takes the run
/// over and records it; when the first wakes (SIGCONT) it can neither record, renew nor
/// acknowledge the run it lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_cannot_complete_a_run_it_lost() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let log = std::env::temp_dir().join(format!("{}.slow", cli.target.name));
    let log_text = log.to_string_lossy().into_owned();
    let execution = docket
        .add(crate::tasks::AppSlow::new(log_text, 1_500))
        .key("slow")
        .await
        .unwrap();
    let lines = || std::fs::read_to_string(&log).unwrap_or_default();
    let stopped = cli.worker(&["--name", "stopped", "--redelivery-timeout", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines().contains("start stopped") {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&stopped, "STOP");

    let taker = cli.worker(&["--name", "taker", "--redelivery-timeout", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while execution.state().await.unwrap() != ExecutionState::Completed {
        assert!(
            Instant::now() < deadline,
            "the run was never taken over: {}",
            lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(execution.result::<String>().await.unwrap(), "taker");
    let before = execution.record().await.unwrap().unwrap();

    signal(&stopped, "CONT");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lines().contains("end stopped") {
        assert!(
            Instant::now() < deadline,
            "the stopped worker never resumed: {}",
            lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = execution.record().await.unwrap().unwrap();
    assert_eq!(
        after.worker.as_deref(),
        Some("taker"),
        "the stale worker recorded nothing"
    );
    assert_eq!(after.generation, before.generation);
    assert_eq!(after.completed_at, before.completed_at);

    sigterm(&stopped);
    sigterm(&taker);
    let stopped = finish(stopped, Duration::from_secs(20), &["stopped"]).await;
    let taker = finish(taker, Duration::from_secs(20), &["taker"]).await;
    assert!(stopped.status.success() && taker.status.success());
    let logs = text(&stopped.stderr);
    assert!(
        logs.contains("taken over by another worker; its end was not recorded"),
        "{logs}"
    );
    // Nothing is left pending: the stale worker could not acknowledge (or keep) it.
    let mut redis = cli.target.redis.as_ref().unwrap().connection();
    let pending: Vec<::redis::Value> = ::redis::cmd("XPENDING")
        .arg(format!("{}:stream", cli.target.name))
        .arg("docket-workers")
        .query(&mut redis)
        .unwrap();
    assert_eq!(
        pending.first(),
        Some(&::redis::Value::Int(0)),
        "{pending:?}"
    );
    let _ = std::fs::remove_file(&log);
}

/// SIGTERM during work: the running task finishes within the drain timeout, waiting ones
/// stay queued for the next worker; a task past the drain timeout is left pending and
/// redelivered to the next worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_the_rest_for_the_next_worker() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let keys: Vec<String> = {
        let mut keys = Vec::new();
        for _ in 0..3 {
            keys.push(added_key(&cli.ok(&["tasks", "sleep", "0.5"]).await));
        }
        keys
    };
    let first = cli.worker(&["--concurrency", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        let mut running = None;
        for key in &keys {
            let state = docket
                .get_execution(key)
                .await
                .unwrap()
                .unwrap()
                .state()
                .await
                .unwrap();
            if state == ExecutionState::Running {
                running = Some(key.clone());
            }
        }
        if let Some(key) = running {
            break key;
        }
        assert!(Instant::now() < deadline, "nothing ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    sigterm(&first);
    let output = finish(first, Duration::from_secs(20), &["first"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let state = |key: String| {
        let docket = docket.clone();
        async move {
            docket
                .get_execution(&key)
                .await
                .unwrap()
                .unwrap()
                .state()
                .await
                .unwrap()
        }
    };
    assert_eq!(state(running.clone()).await, ExecutionState::Completed);
    let mut left = 0;
    for key in keys.iter().filter(|k| **k != running) {
        if state(key.clone()).await == ExecutionState::Queued {
            left += 1;
        }
    }
    assert!(left >= 1, "the drained worker left queued tasks alone");

    // A run past the drain timeout is abandoned, then redelivered to the next worker.
    let long = added_key(&cli.ok(&["tasks", "sleep", "3"]).await);
    let impatient = cli.worker(&[
        "--concurrency",
        "10",
        "--drain-timeout",
        "200ms",
        "--redelivery-timeout",
        "1s",
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(long.clone()).await != ExecutionState::Running {
        assert!(Instant::now() < deadline, "the long sleep never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped_at = Instant::now();
    sigterm(&impatient);
    let output = finish(impatient, Duration::from_secs(20), &["impatient"]).await;
    assert!(output.status.success());
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "it left after its drain timeout"
    );
    assert!(
        text(&output.stderr).contains("drain timeout"),
        "{}",
        text(&output.stderr)
    );
    let next = cli.worker(&["--until-finished", "--redelivery-timeout", "1s"]);
    let output = finish(next, Duration::from_secs(30), &["next"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    for key in keys.iter().chain([&long]) {
        assert_eq!(state(key.clone()).await, ExecutionState::Completed, "{key}");
    }
    let record = record_of(&docket, &long).await;
    assert_eq!(record.attempt, 1, "a redelivery is not a retry");
}

/// A task that kills its worker process every time is dead-lettered after
/// `--max-deliveries`, and `docket dead-letters` lists, retries and purges it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_kills_its_worker_is_dead_lettered_and_listed() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let execution = docket
        .add(crate::tasks::AppPoison::new("boom".into()))
        .key("pill")
        .await
        .unwrap();
    let args = ["--max-deliveries", "2", "--redelivery-timeout", "500ms"];
    for _ in 0..2 {
        let worker = cli.worker(&args);
        let output = finish(worker, Duration::from_secs(20), &["victim"]).await;
        assert!(!output.status.success(), "the pill killed its worker");
        assert!(text(&output.stderr).contains("poison pill: boom"));
    }
    let survivor = cli.worker(&args);
    let deadline = Instant::now() + Duration::from_secs(20);
    while execution.state().await.unwrap() != ExecutionState::Failed {
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigterm(&survivor);
    let output = finish(survivor, Duration::from_secs(20), &["survivor"]).await;
    assert!(output.status.success(), "the third worker survived");

    let listed = cli.ok(&["dead-letters", "ls"]).await;
    assert!(
        listed.contains("pill") && listed.contains("app_poison"),
        "{listed}"
    );
    assert!(
        listed.contains("dead-lettered: delivered 2 times"),
        "{listed}"
    );
    let snapshot = cli.ok(&["snapshot"]).await;
    assert!(snapshot.contains("dead letters:"), "{snapshot}");
    let retried = cli.ok(&["dead-letters", "retry", "pill"]).await;
    assert!(
        retried.starts_with("added app_poison task pill again"),
        "{retried}"
    );
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Queued);
    let missing = cli.run(&["dead-letters", "retry", "pill"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        cli.ok(&["dead-letters", "ls"])
            .await
            .starts_with("no dead letters")
    );
    let purged = cli.ok(&["dead-letters", "purge"]).await;
    assert!(purged.starts_with("purged 0 dead letters"), "{purged}");
    cli.ok(&["clear"]).await;
}

/// libfaketime's preload library, where Debian and other distributions put it.
fn libfaketime() -> std::path::PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(std::path::PathBuf::from)
        .find(|path| path.exists())
        .unwrap_or_else(|| {
            panic!(
                "this test needs libfaketime (none of {candidates:?} exists): \
                 `apt-get install -y faketime` (the README's test command, .ci/run, does this)"
            )
        })
}

/// A worker whose clock is 30 s fast (libfaketime) runs tasks when the Redis server's
/// clock says they are due, never early: due times are decided by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_clock_is_30s_fast_does_not_run_tasks_early() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let mut worker = cli.command(&[
        "worker",
        "--minimum-check-interval",
        "20ms",
        "--scheduling-resolution",
        "20ms",
    ]);
    // Only the wall clock is 30 s ahead; timers stay on the real monotonic clock.
    let worker = worker
        .env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", "+30s")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .spawn()
        .expect("start a worker under libfaketime");

    let clock = docket.add(crate::tasks::AppClock::new()).await.unwrap();
    let worker_now = tokio::time::timeout(Duration::from_secs(20), clock.result::<u64>())
        .await
        .expect("the worker ran app_clock")
        .unwrap();
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ahead = i128::from(worker_now) - i128::try_from(real_now).unwrap();
    assert!(
        ahead > 29_000,
        "the worker's clock is {ahead} ms ahead, not 30 s"
    );

    let mut executions = Vec::new();
    for delay in [1_500, 3_000] {
        executions.push(
            docket
                .add(crate::tasks::AppClock::new())
                .after(Duration::from_millis(delay))
                .await
                .unwrap(),
        );
    }
    for execution in &executions {
        tokio::time::timeout(Duration::from_secs(20), execution.result::<u64>())
            .await
            .expect("the scheduled task ran")
            .unwrap();
        let record = record_of(&docket, execution.key()).await;
        let started = record.started_at.expect("a started run");
        let early = record.when.duration_since(started).unwrap_or_default();
        let late = started.duration_since(record.when).unwrap_or_default();
        println!("{}: started {late:?} after due", execution.key());
        assert_eq!(early, Duration::ZERO, "started {early:?} before it was due");
        assert!(late < Duration::from_secs(1), "started {late:?} late");
    }
    sigterm(&worker);
    let output = finish(worker, Duration::from_secs(20), &["faketime worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
}
