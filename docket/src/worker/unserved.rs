//! Calls no worker serves: a worker that claims a call of a task it does not serve hands
//! it back (see `run`), and a serving worker's heartbeat queues it again. This loop gives
//! up on calls that waited longer than the grace period while no live worker served
//! their task: each is dead-lettered with an error that says why that is likely.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use super::loops::pause;
use crate::error::Result;
use crate::model::{ActiveWorker, TaskError, TaskErrorKind};
use crate::observe::metrics;

/// How many workers the error names before it says how many more there are.
const WORKERS_NAMED: usize = 5;

/// Looks at the calls waiting for a worker a few times per grace period (at least every
/// 30 s, at most every 100 ms), for as long as the worker runs.
pub(super) async fn sweep(shared: Arc<Shared>) {
    let grace = shared.settings.unserved_grace;
    let every = (grace / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    while pause(&shared, every).await {
        if let Err(error) = abandon_overdue(&shared, grace).await {
            shared.mark_lost("looking at calls no worker serves", &error);
        }
    }
}

/// Dead-letters the calls of each task no live worker serves that waited past `grace`.
/// Every worker does this: the backend gives up on a call once, and on none while a
/// worker serving its task is alive.
async fn abandon_overdue(shared: &Shared, grace: Duration) -> Result<()> {
    let backend = shared.docket.backend();
    let waiting = backend.unserved().await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let now = backend.now().await?;
    let Some(cutoff) = now.checked_sub(grace) else {
        return Ok(());
    };
    let overdue: Vec<_> = waiting.into_iter().filter(|u| u.since <= cutoff).collect();
    if overdue.is_empty() {
        return Ok(());
    }
    let workers = backend.workers(None).await?;
    for unserved in overdue {
        let task = unserved.task;
        if workers.iter().any(|worker| worker.tasks.contains(&task)) {
            // A worker serves it: its next heartbeat queues the calls.
            continue;
        }
        let error = unserved_error(&task, grace, &workers);
        let abandoned = backend.abandon_unserved(&task, cutoff, error).await?;
        if abandoned > 0 {
            metrics::count(
                "docket_tasks_unserved",
                shared.labels(Some(&task)),
                u64::try_from(abandoned).unwrap_or(u64::MAX),
            );
            tracing::warn!(
                docket = %shared.docket.name(), worker = %shared.info.name(), task = %task,
                calls = abandoned, grace = ?grace,
                "dead-lettered calls no worker served within the grace period"
            );
        }
    }
    Ok(())
}

/// Why calls of `task` were given up on: the task, the workers seen and what they
/// serve, and the likely causes.
fn unserved_error(task: &str, grace: Duration, workers: &[ActiveWorker]) -> TaskError {
    let seen = if workers.is_empty() {
        "no worker sent a heartbeat".to_owned()
    } else {
        let mut named: Vec<String> = workers
            .iter()
            .take(WORKERS_NAMED)
            .map(|worker| format!("{} ({})", worker.name, worker.tasks.join(", ")))
            .collect();
        if workers.len() > WORKERS_NAMED {
            named.push(format!("and {} more", workers.len() - WORKERS_NAMED));
        }
        format!("the workers seen serve other tasks: {}", named.join("; "))
    };
    TaskError::new(
        TaskErrorKind::UnknownTask,
        format!(
            "no worker serving `{task}` was seen for {}: {seen}. The crate that declares \
             `{task}` may not be linked into the worker binary (name it in \
             `docket::tasks!(..)`, or `use` it in `main`), a `--tasks` filter may leave it \
             out, or a deploy may not have finished; `docket dead-letters retry KEY` adds \
             the call again once a worker serves `{task}`",
            span(grace)
        ),
    )
}

/// A duration as an operator writes it: `10m`, `90s`, `250ms`.
fn span(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn worker(name: &str, tasks: &[&str]) -> ActiveWorker {
        ActiveWorker {
            name: name.to_owned(),
            last_seen: SystemTime::now(),
            tasks: tasks.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn the_error_names_the_task_the_workers_and_the_likely_causes() {
        let workers = [worker("old-1", &["fail", "sleep", "trace"])];
        let error = unserved_error("greet", Duration::from_mins(10), &workers);
        assert!(error.is_unknown_task());
        let text = error.message();
        assert!(
            text.contains("no worker serving `greet` was seen for 10m"),
            "{text}"
        );
        assert!(text.contains("old-1 (fail, sleep, trace)"), "{text}");
        assert!(text.contains("docket::tasks!"), "{text}");
        assert!(text.contains("--tasks"), "{text}");
        assert!(text.contains("deploy"), "{text}");
        assert!(text.contains("docket dead-letters retry"), "{text}");

        let nobody = unserved_error("greet", Duration::from_secs(90), &[]);
        assert!(
            nobody
                .message()
                .contains("for 90s: no worker sent a heartbeat")
        );
        let many: Vec<ActiveWorker> = (0..8).map(|n| worker(&format!("w{n}"), &["a"])).collect();
        let text = unserved_error("b", Duration::from_millis(250), &many)
            .message()
            .to_owned();
        assert!(text.contains("for 250ms"), "{text}");
        assert!(text.contains("w4 (a); and 3 more"), "{text}");
        assert!(!text.contains("w5"), "{text}");
    }
}
