//! The operator's commands: adding tasks, `snapshot`, `clear`, `workers`, `watch`,
//! `strike`/`restore`, refusals of bad input, help, version and completions.

use std::time::{Duration, Instant};

use docket::ExecutionState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use super::{Cli, added_key, finish, sigterm, text};
use crate::support::{Target, wait_for};

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
    let what = "the worker to show up in `workers ls`";
    let listed = wait_for(Duration::from_secs(20), what, || async {
        let listed = cli.ok(&["workers", "ls"]).await;
        if listed.contains("cli-worker-1") {
            Ok(listed)
        } else {
            Err(listed)
        }
    })
    .await;
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
