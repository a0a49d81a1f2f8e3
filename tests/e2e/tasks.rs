//! The tasks the end-to-end scenarios run. Tasks that report into a probe take the
//! probe's name (the test's docket name) as their first argument.

use std::time::Duration;

use docket::{Docket, Execution, Progress, Retry, TaskKey, WorkerInfo};
use serde::{Deserialize, Serialize};

use crate::support::{probe_end, probe_start};

#[docket::task]
pub async fn add_numbers(a: i64, b: i64) -> i64 {
    a + b
}

#[docket::task]
pub async fn always_fails(message: String) -> Result<u32, String> {
    Err(message)
}

#[docket::task]
pub async fn panics(message: String) {
    panic!("{message}");
}

/// Records its run in the probe, sleeps, and returns its key.
#[docket::task]
pub async fn probed(probe: String, millis: u64, execution: Execution) -> String {
    let index = probe_start(&probe, &execution);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    probe_end(&probe, index);
    execution.key().to_owned()
}

/// Reports `steps` units of progress, pausing between them.
#[docket::task]
pub async fn with_progress(steps: u64, pause_ms: u64, progress: Progress) -> docket::Result<u64> {
    progress.set_total(steps).await?;
    for step in 1..=steps {
        tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        progress.increment(1).await?;
        progress.set_message(format!("step {step}")).await?;
    }
    Ok(steps)
}

#[docket::task(name = "tests.renamed")]
pub async fn renamed_task() -> String {
    "renamed".to_owned()
}

/// What a task can learn about its own run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspected {
    pub key: String,
    pub attempt: u32,
    pub attempts: Option<u32>,
    pub worker: String,
    pub concurrency: usize,
    pub docket: String,
    pub function: String,
    pub generation: u64,
}

#[docket::task(retry = Exponential(4, 1s..10s), timeout = "30s")]
pub async fn inspect(
    key: TaskKey,
    retry: Retry,
    worker: WorkerInfo,
    docket: Docket,
    execution: Execution,
) -> Inspected {
    Inspected {
        key: key.to_string(),
        attempt: retry.attempt(),
        attempts: retry.attempts(),
        worker: worker.name().to_owned(),
        concurrency: worker.concurrency(),
        docket: docket.name().to_owned(),
        function: execution.function().to_owned(),
        generation: execution.generation(),
    }
}

/// Schedules a follow-up through the injected `Docket`.
#[docket::task]
pub async fn chain(probe: String, remaining: u32, docket: Docket) -> docket::Result<()> {
    if remaining > 0 {
        docket
            .add(Chain::new(probe, remaining - 1))
            .after(Duration::from_millis(50))
            .await?;
    }
    Ok(())
}

/// Like `probed`, with a 200 ms budget.
#[docket::task(timeout = "200ms")]
pub async fn overruns(probe: String, millis: u64, execution: Execution) -> String {
    let index = probe_start(&probe, &execution);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    probe_end(&probe, index);
    execution.key().to_owned()
}
