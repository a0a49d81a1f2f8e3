//! The tasks the end-to-end scenarios run. Tasks that report into a probe take the
//! probe's name (the test's docket name) as their first argument.

use std::time::Duration;

use docket::{
    Depends, Docket, Execution, Perpetual, Progress, Retry, Shared, TaskKey, Timeout, WorkerInfo,
};
use serde::{Deserialize, Serialize};

use crate::support::{ProbeGuard, probe_end, probe_start};

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

/// Fails on every attempt, naming it; three attempts 100 ms apart.
#[docket::task(retry = Fixed(3, 100ms))]
pub async fn fails_thrice(probe: String, execution: Execution) -> Result<(), String> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    Err(format!("attempt {} failed", execution.attempt()))
}

/// Fails on attempts 1–3; delays 200 ms, 400 ms, then capped at 500 ms.
#[docket::task(retry = Exponential(5, 200ms..500ms))]
pub async fn backs_off(probe: String, execution: Execution) -> Result<u32, String> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if execution.attempt() < 4 {
        return Err(format!("attempt {}", execution.attempt()));
    }
    Ok(execution.attempt())
}

/// Retries forever, 20 ms apart; succeeds on attempt `succeed_on`.
#[docket::task(retry = Forever(20ms))]
pub async fn stubborn(probe: String, succeed_on: u32, execution: Execution) -> Result<u32, String> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if execution.attempt() < succeed_on {
        return Err("not yet".into());
    }
    Ok(execution.attempt())
}

/// No retry policy: forces its own retries, `delay_ms` apart, until attempt 3.
#[docket::task]
pub async fn forces_retries(
    probe: String,
    delay_ms: u64,
    retry: Retry,
    execution: Execution,
) -> anyhow::Result<u32> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if retry.attempt() < 3 {
        return Err(retry.after(Duration::from_millis(delay_ms)).into());
    }
    Ok(retry.attempt())
}

/// Sleeps `millis`, then fails; retried 3 times, 300 ms apart.
#[docket::task(retry = Fixed(3, 300ms))]
pub async fn slow_failure(probe: String, millis: u64, execution: Execution) -> Result<(), String> {
    // Ends the probe's run when the future is dropped too (a cancelled run).
    let _run = ProbeGuard::start(&probe, &execution);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    Err("slow failure".into())
}

/// A perpetual task every 150 ms that fails on its even runs.
#[docket::task(perpetual = "150ms")]
pub async fn ticks(probe: String, execution: Execution) -> Result<(), String> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if index % 2 == 1 {
        return Err(format!("tick {} fails", index + 1));
    }
    Ok(())
}

/// Perpetual, counting up through `perpetuate`; ends its chain after `last`.
#[docket::task(perpetual = "30ms")]
pub async fn counts_up(
    probe: String,
    n: u32,
    last: u32,
    perpetual: Perpetual,
    execution: Execution,
) -> docket::Result<u32> {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if n >= last {
        perpetual.cancel();
    } else {
        perpetual.perpetuate(CountsUp::new(probe, n + 1, last))?;
    }
    Ok(n)
}

/// Reschedules itself with `Perpetual::after` though it declares no schedule.
#[docket::task]
pub async fn self_paced(probe: String, perpetual: Perpetual, execution: Execution) {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    if index < 2 {
        perpetual.after(Duration::from_millis(250));
    }
}

/// An automatic perpetual task (seeded by workers that enable automatic tasks).
#[docket::task(perpetual(every = "1h", automatic))]
pub async fn hourly_sweep() {}

/// An automatic cron task, every day at 09:30 in Paris.
#[docket::task(cron(expr = "30 9 * * *", tz = "Europe/Paris"))]
pub async fn morning_report() {}

/// Sleeps `millis` within a 300 ms budget, extending it by `extend_ms` first.
#[docket::task(timeout = "300ms")]
pub async fn extends(millis: u64, extend_ms: u64, timeout: Timeout) -> u64 {
    if extend_ms > 0 {
        timeout.extend(Duration::from_millis(extend_ms));
    }
    let left = timeout
        .remaining()
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    tokio::time::sleep(Duration::from_millis(millis)).await;
    left
}

/// Times out on each of its 2 attempts.
#[docket::task(timeout = "100ms", retry = 2)]
pub async fn always_late(probe: String, execution: Execution) {
    let _index = probe_start(&probe, &execution);
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// Counts how often it is resolved, per probe.
#[derive(Debug, Clone)]
pub struct Resolved(pub usize);

impl docket::FromExecution for Resolved {
    type Rejection = String;

    async fn from_execution(execution: &Execution) -> Result<Self, String> {
        let probe: serde_json::Value =
            serde_json::from_str(execution.args()).map_err(|e| e.to_string())?;
        let probe = probe["probe"].as_str().unwrap_or_default().to_owned();
        if probe.ends_with("-refuse") {
            return Err("the resolver refused".into());
        }
        let index = probe_start(&format!("{probe}-resolutions"), execution);
        probe_end(&format!("{probe}-resolutions"), index);
        Ok(Self(index))
    }
}

/// Built once per worker; counts builds and teardowns in its probe.
#[derive(Debug)]
pub struct Pool {
    pub worker: String,
}

pub static POOL_BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
pub static POOL_TEARDOWNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl docket::FromWorker for Pool {
    async fn from_worker(worker: &WorkerInfo) -> Result<Self, String> {
        POOL_BUILDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(Self {
            worker: worker.name().to_owned(),
        })
    }

    async fn teardown(&self) {
        POOL_TEARDOWNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Given to the worker on its builder.
#[derive(Debug)]
pub struct Greeting(pub String);

impl docket::FromWorker for Greeting {}

/// Takes the same dependency twice, a shared pool and a provided greeting.
#[docket::task]
pub async fn uses_dependencies(
    probe: String,
    first: Depends<Resolved>,
    second: Depends<Resolved>,
    pool: Shared<Pool>,
    greeting: Shared<Greeting>,
) -> (usize, usize, String, String) {
    let _ = probe;
    (first.0, second.0, pool.worker.clone(), greeting.0.clone())
}

/// Needs a `Greeting` the worker may not have.
#[docket::task]
pub async fn needs_greeting(greeting: Shared<Greeting>) -> String {
    greeting.0.clone()
}

/// Resolves a dependency that may refuse.
#[docket::task]
pub async fn picky(probe: String, resolved: Depends<Resolved>) -> usize {
    let _ = probe;
    resolved.0
}

/// Wire-compatible with `app_tick` of the `docket-app` binary, to schedule it from here.
#[docket::task(name = "app_tick", perpetual = "300ms")]
pub async fn app_tick(log: String) {
    let _ = log;
    unreachable!("only docket-app workers run app_tick");
}

/// A task with typed arguments, for strikes.
#[docket::task]
pub async fn charge(probe: String, customer: String, amount: u64, vip: bool, execution: Execution) {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    let _ = (customer, amount, vip);
}

/// Another task sharing the `customer` parameter.
#[docket::task]
pub async fn refund(probe: String, customer: String, execution: Execution) {
    let index = probe_start(&probe, &execution);
    probe_end(&probe, index);
    let _ = customer;
}

/// Runs of `fast_sweep`, by docket.
pub static FAST_SWEEPS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, usize>>,
> = std::sync::LazyLock::new(Default::default);

/// An automatic perpetual task every 100 ms (seeded by workers that enable them).
#[docket::task(perpetual(every = "100ms", automatic))]
pub async fn fast_sweep(docket: Docket) {
    *FAST_SWEEPS
        .lock()
        .unwrap()
        .entry(docket.name().to_owned())
        .or_default() += 1;
}

pub fn fast_sweeps(docket: &str) -> usize {
    FAST_SWEEPS
        .lock()
        .unwrap()
        .get(docket)
        .copied()
        .unwrap_or(0)
}

/// At most one run per customer at a time.
#[docket::task(concurrency(max = 1, arg = customer))]
pub async fn one_per_customer(probe: String, customer: String, millis: u64, execution: Execution) {
    let _run = ProbeGuard::start(&probe, &execution);
    let _ = customer;
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// At most two runs at a time.
#[docket::task(concurrency(max = 2))]
pub async fn two_at_a_time(probe: String, millis: u64, execution: Execution) {
    let _run = ProbeGuard::start(&probe, &execution);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Debounced: runs once after calls stop for 300 ms.
#[docket::task(debounce = "300ms")]
pub async fn debounced(probe: String, n: u32, execution: Execution) -> u32 {
    let _run = ProbeGuard::start(&probe, &execution);
    n
}

/// Runs at most once per 500 ms; calls within the window are dropped.
#[docket::task(cooldown = "500ms")]
pub async fn cooled(probe: String, n: u32, execution: Execution) -> u32 {
    let _run = ProbeGuard::start(&probe, &execution);
    n
}

/// At most 10 runs per second; the rest wait.
#[docket::task(rate_limit(10, per = "1s"))]
pub async fn rate_limited(probe: String, execution: Execution) {
    let _run = ProbeGuard::start(&probe, &execution);
}

/// At most 10 runs per second; the rest are dropped.
#[docket::task(rate_limit(10, per = "1s", drop))]
pub async fn rate_dropped(probe: String, execution: Execution) {
    let _run = ProbeGuard::start(&probe, &execution);
}

/// Wire-compatible with `app_flaky` of the `docket-app` binary.
#[docket::task(name = "app_flaky", retry = Fixed(2, 50ms))]
pub async fn app_flaky(n: u32) {
    let _ = n;
    unreachable!("only docket-app workers run app_flaky");
}

/// The size of what it was given.
#[docket::task]
pub async fn measure(data: String) -> usize {
    data.len()
}

/// Wire-compatible with `app_slow` of the `docket-app` binary.
#[docket::task(name = "app_slow")]
pub async fn app_slow(log: String, millis: u64) -> String {
    let _ = (log, millis);
    unreachable!("only docket-app workers run app_slow");
}

/// Wire-compatible with `app_poison` of the `docket-app` binary.
#[docket::task(name = "app_poison")]
pub async fn app_poison(note: String) {
    let _ = note;
    unreachable!("only docket-app workers run app_poison");
}

/// Wire-compatible with `app_clock` of the `docket-app` binary.
#[docket::task(name = "app_clock")]
pub async fn app_clock() -> u64 {
    unreachable!("only docket-app workers run app_clock");
}
