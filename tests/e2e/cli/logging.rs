//! `--logging-level`, as an operator reads a worker's output.

use std::time::Duration;

use super::{Cli, finish, text};

/// The level of each line of a worker's plain output (`TIMESTAMP  LEVEL message...`),
/// with the line.
fn levels(logs: &str) -> Vec<(&str, &str)> {
    logs.lines()
        .filter_map(|line| Some((line.split_whitespace().nth(1)?, line)))
        .collect()
}

/// A worker at `warn` prints its warnings and none of its info lines; at `info` it
/// prints both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logging_level_drops_the_lines_below_it() {
    let cli = Cli::new();
    for level in ["warn", "info"] {
        cli.ok(&["tasks", "trace", "hello"]).await;
        cli.ok(&["tasks", "fail", "boom"]).await;
        let worker = cli.worker(&["--until-finished", "--logging-level", level]);
        let output = finish(worker, Duration::from_secs(30), &["worker", level]).await;
        let logs = text(&output.stderr);
        assert!(output.status.success(), "{}\n{logs}", output.status);
        let lines = levels(&logs);
        let has = |wanted: &str, message: &str| {
            lines
                .iter()
                .any(|(level, line)| *level == wanted && line.contains(message))
        };
        assert!(has("WARN", "task failed"), "at {level}:\n{logs}");
        let info = lines.iter().filter(|(level, _)| *level == "INFO").count();
        if level == "warn" {
            assert_eq!(info, 0, "info lines at warn:\n{logs}");
        } else {
            assert!(has("INFO", "task started"), "at info:\n{logs}");
            assert!(has("INFO", "task finished"), "at info:\n{logs}");
        }
    }
}
