//! `docket watch KEY`: one task's state and progress, live, until it finishes.
//!
//! On a terminal the line is redrawn in place with a progress bar; otherwise (a pipe, a
//! log collector) every change is printed as its own line.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use futures::StreamExt;

use super::Outcome;
use super::table::timestamp;
use crate::client::Docket;
use crate::model::{Event, ExecutionState, ProgressState};

const BAR_WIDTH: usize = 30;

/// What the watcher knows so far.
#[derive(Debug, Default)]
struct View {
    state: Option<ExecutionState>,
    worker: Option<String>,
    progress: Option<ProgressState>,
    error: Option<String>,
}

impl View {
    fn apply(&mut self, event: Event) {
        match event {
            Event::State {
                state,
                worker,
                error,
                ..
            } => {
                self.state = Some(state);
                if worker.is_some() {
                    self.worker = worker;
                }
                self.error = error.map(|e| e.to_string());
            }
            Event::Progress(progress) => self.progress = Some(progress),
        }
    }

    fn line(&self, key: &str) -> String {
        let state = self.state.map_or("UNKNOWN", ExecutionState::as_str);
        let mut line = format!("{key} {state}");
        if let Some(worker) = &self.worker {
            let _ = write!(line, " on {worker}");
        }
        if let Some(progress) = &self.progress {
            line.push(' ');
            line.push_str(&bar(progress));
        }
        if let Some(error) = &self.error {
            let _ = write!(line, ": {error}");
        }
        line
    }
}

/// `[###############---------------]  50% 5/10 resizing`.
fn bar(progress: &ProgressState) -> String {
    let mut text = match progress.total {
        Some(total) if total > 0 => {
            let done = progress.current.min(total);
            let filled = usize::try_from(done * BAR_WIDTH as u64 / total).unwrap_or(BAR_WIDTH);
            format!(
                "[{}{}] {:>3}% {}/{}",
                "#".repeat(filled),
                "-".repeat(BAR_WIDTH - filled),
                done * 100 / total,
                progress.current,
                total
            )
        }
        _ => format!("{} done", progress.current),
    };
    if let Some(message) = &progress.message {
        text.push(' ');
        text.push_str(message);
    }
    text
}

pub(super) async fn run(docket: &Docket, key: &str) -> Outcome {
    let execution = docket
        .get_execution(key)
        .await
        .map_err(|e| format!("cannot read `{key}`: {e}"))?
        .ok_or_else(|| format!("no task with key `{key}` in docket `{}`", docket.name()))?;
    let mut events = execution
        .subscribe()
        .await
        .map_err(|e| format!("cannot follow `{key}`: {e}"))?;
    let terminal = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut view = View::default();
    let mut last = String::new();
    while let Some(event) = events.next().await {
        view.apply(event);
        let line = view.line(key);
        if line == last {
            continue;
        }
        // A closed stdout (`| head`) ends the watch quietly.
        let written = if terminal {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{} {line}", timestamp(SystemTime::now()))
        };
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
        last = line;
        if view.state.is_some_and(ExecutionState::is_terminal) {
            break;
        }
    }
    if terminal {
        let _ = writeln!(out);
    }
    match view.state {
        Some(ExecutionState::Completed) => Ok(ExitCode::SUCCESS),
        Some(state) if state.is_terminal() => Ok(ExitCode::FAILURE),
        _ => Err(format!(
            "lost track of `{key}` before it finished (its record expired or was removed)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars() {
        let half = ProgressState {
            current: 5,
            total: Some(10),
            message: Some("resizing".into()),
        };
        assert_eq!(
            bar(&half),
            "[###############---------------]  50% 5/10 resizing"
        );
        let open = ProgressState {
            current: 3,
            total: None,
            message: None,
        };
        assert_eq!(bar(&open), "3 done");
    }

    #[test]
    fn lines_follow_the_events() {
        let mut view = View::default();
        view.apply(Event::State {
            state: ExecutionState::Running,
            generation: 1,
            worker: Some("w1".into()),
            error: None,
        });
        assert_eq!(view.line("k"), "k RUNNING on w1");
        view.apply(Event::Progress(ProgressState {
            current: 10,
            total: Some(10),
            message: None,
        }));
        view.apply(Event::State {
            state: ExecutionState::Completed,
            generation: 1,
            worker: None,
            error: None,
        });
        assert!(
            view.line("k").starts_with("k COMPLETED on w1 [###"),
            "{}",
            view.line("k")
        );
    }
}
