//! Scenario 7, the drain on `memory://` (in a child process: `memory://` lives in one process) and
//! scenario 8, scale: a million future tasks scheduled, then promoted and drained when due.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use redis::aio::MultiplexedConnection;
use serde_json::json;

use crate::child::{ChildReport, Mode, WorkerArgs, noop_at};
use crate::report::{Figure, Outcome};
use crate::scenarios::{Bench, FIRE_AND_FORGET, TRACKED, WorkerProcess, count_u64, ttl_label};
use crate::server;
use crate::stats::{Summary, count, count64, megabytes, rate};

/// A child's peak RSS growth from `from` (KiB) to its end, in MB.
fn growth_mb(report: &ChildReport, from: u64) -> f64 {
    megabytes(report.hwm_kib.saturating_sub(from))
}

/// The runs of one `memory://` configuration: a child process each.
async fn memory_runs(bench: &mut Bench, ttl: Duration, tasks: usize) -> Result<Vec<ChildReport>> {
    let mut reports = Vec::new();
    for _ in 0..bench.runs {
        let name = bench.fresh_name("memory");
        let args = WorkerArgs {
            mode: Mode::Memory,
            url: format!("memory://{name}"),
            name,
            concurrency: 50,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            tasks,
        };
        let (report, _) = WorkerProcess::spawn(&bench.exe, &args)
            .await?
            .finish()
            .await?;
        if report.starts != count_u64(tasks) {
            bail!(
                "the memory:// worker started {} tasks of {tasks}",
                report.starts
            );
        }
        reports.push(report);
    }
    Ok(reports)
}

/// A child's peak RSS growth from before adding to its end, in bytes per task.
fn bytes_per_task(report: &ChildReport, tasks: usize) -> f64 {
    count64(report.hwm_kib.saturating_sub(report.hwm_start_kib)) * 1024.0 / count(tasks)
}

/// Scenario 7, `memory://`: the drain of scenario 2 (N no-ops, one worker, concurrency 50) on an
/// in-process docket, in a child process that adds them first; state tracking and
/// fire-and-forget.
pub(crate) async fn memory(bench: &mut Bench) -> Result<Outcome> {
    let tasks = bench.n(20_000);
    let mut outcome = Outcome::default();
    let mut details = serde_json::Map::new();
    for ttl in [TRACKED, FIRE_AND_FORGET] {
        let reports = memory_runs(bench, ttl, tasks).await?;
        let mode = ttl_label(ttl);
        let rates: Vec<f64> = reports
            .iter()
            .map(|r| count(tasks) / (r.run_ms / 1e3))
            .collect();
        let active: Vec<f64> = reports
            .iter()
            .map(|r| count(tasks) / ((r.last_start_ms - r.first_start_ms).max(1e-6) / 1e3))
            .collect();
        let per_task: Vec<f64> = reports.iter().map(|r| bytes_per_task(r, tasks)).collect();
        let whole: Vec<f64> = reports
            .iter()
            .map(|r| growth_mb(r, r.hwm_start_kib))
            .collect();
        let drain_only: Vec<f64> = reports
            .iter()
            .map(|r| growth_mb(r, r.hwm_added_kib))
            .collect();
        let peak: Vec<f64> = reports.iter().map(|r| megabytes(r.hwm_kib)).collect();
        let adding: Vec<f64> = reports
            .iter()
            .map(|r| count(tasks) / (r.add_ms / 1e3))
            .collect();
        outcome.figures.push(
            Figure::new(
                "7 memory://",
                format!("memory.rate.{mode}"),
                format!("memory:// drain {mode}, c=50, N={tasks}"),
                "tasks/s",
                Summary::of(&rates),
            )
            .at_least(200_000.0, "≥ 200 000/s"),
        );
        outcome.figures.push(Figure::new(
            "7 memory://",
            format!("memory.rate.{mode}.first_to_last_start"),
            format!("memory:// drain {mode}, c=50, N / (first → last task start)"),
            "tasks/s",
            Summary::of(&active),
        ));
        outcome.figures.push(
            Figure::new(
                "7 memory://",
                format!("memory.rss.{mode}"),
                format!("memory:// peak RSS growth (add + drain), {mode}"),
                "MB",
                Summary::of(&whole),
            )
            .at_most(20.0, "≤ 20 MB"),
        );
        outcome.figures.push(Figure::new(
            "7 memory://",
            format!("memory.bytes_per_task.{mode}"),
            format!("memory:// bytes per task (peak RSS growth / N), {mode}"),
            "bytes",
            Summary::of(&per_task),
        ));
        details.insert(
            mode.to_owned(),
            json!({
                "rate": Summary::of(&rates),
                "rate_first_to_last_start": Summary::of(&active),
                "tail_after_last_start_ms": Summary::of(&reports.iter().map(|r| r.run_ms - r.last_start_ms).collect::<Vec<_>>()),
                "bytes_per_task": Summary::of(&per_task),
                "add_many_rate": Summary::of(&adding),
                "peak_rss_growth_add_and_drain_mb": Summary::of(&whole),
                "peak_rss_growth_during_drain_mb": Summary::of(&drain_only),
                "peak_rss_mb": Summary::of(&peak),
                "runs": reports,
            }),
        );
    }
    details.insert("tasks".into(), json!(tasks));
    details.insert(
        "method".into(),
        json!(
            "a child process (`docket-bench-worker --mode memory`) connects memory://, notes \
             VmHWM, add_many's N no-ops ×1000, notes VmHWM, drains them with one Worker \
             (concurrency 50, schedule_automatic_tasks(false), run_until_finished) and notes \
             VmHWM; rate = N / drain time; the RSS target is checked against the growth of \
             VmHWM from before adding to the end (the queued tasks live in the process), and \
             bytes per task = that growth / N; also N / (first → last task start), as in \
             scenario 2"
        ),
    );
    outcome.details = serde_json::Value::Object(details);
    Ok(outcome)
}

/// A key's size by `command` (`ZCARD`, `XLEN`).
async fn size(connection: &mut MultiplexedConnection, command: &str, key: &str) -> Result<u64> {
    Ok(redis::cmd(command).arg(key).query_async(connection).await?)
}

/// Polls a key's size every 5 ms until it is zero, for at most five minutes; returns
/// when it was zero (`None`: never) and the last size read.
async fn until_empty(
    connection: &mut MultiplexedConnection,
    command: &str,
    key: &str,
) -> Result<(Option<Instant>, u64)> {
    let deadline = Instant::now() + Duration::from_mins(5);
    loop {
        let left = size(connection, command, key).await?;
        if left == 0 {
            return Ok((Some(Instant::now()), 0));
        }
        if Instant::now() >= deadline {
            return Ok((None, left));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Schedules `tasks` no-ops due at `due` with `add_many` ×1000 (fire-and-forget);
/// returns how long it took.
async fn schedule_at(bench: &Bench, name: &str, tasks: usize, due: SystemTime) -> Result<Duration> {
    let producer = bench.producer(name, FIRE_AND_FORGET).await?;
    let scheduling = Instant::now();
    let mut left = tasks;
    while left > 0 {
        let now = left.min(1000);
        producer.add_many((0..now).map(|_| noop_at(due))).await?;
        left -= now;
    }
    Ok(scheduling.elapsed())
}

/// Scenario 8, scale, run once: N future no-ops scheduled with `add_many` ×1000, all due at one
/// instant (fire-and-forget); Redis memory per task; then a worker child (concurrency
/// 200) that was idle when they fell due: time until the schedule is empty (promotion)
/// and until the stream is empty (drained).
/// The `add_many` rate (calls a second) the scale scenario plans with when the enqueue
/// scenario did not run first: well under what it measures.
const ASSUMED_ADD_MANY_RATE: f64 = 40_000.0;

pub(crate) async fn scale(bench: &mut Bench, add_many_rate: f64) -> Result<Outcome> {
    bench.clean().await?;
    let tasks = bench.n(1_000_000);
    let name = bench.fresh_name("scale");
    let queue = format!("{name}:queue");
    let stream = format!("{name}:stream");
    let memory_before = server::info_u64(&mut bench.admin, "memory", "used_memory").await?;
    // Due once every call is surely in: the add_many rate measured earlier, with margin.
    // That rate is for calls due now with generated keys (queued without a lookup);
    // future calls take the full path, measured at about half that rate.
    // Run alone (`--only scale`), it assumes a rate it surely reaches rather than waiting
    // as if it were a thousand calls a second.
    let planned_rate = if add_many_rate > 0.0 {
        add_many_rate
    } else {
        ASSUMED_ADD_MANY_RATE
    };
    let expected = count(tasks) / planned_rate;
    let margin = Duration::from_secs_f64(expected * 3.0 + 5.0);
    let due = SystemTime::now() + margin;
    let scheduled = schedule_at(bench, &name, tasks, due).await?;
    let late_start = SystemTime::now() > due;
    let memory_after = server::info_u64(&mut bench.admin, "memory", "used_memory").await?;
    let parked = size(&mut bench.admin, "ZCARD", &queue).await?;
    if parked != count_u64(tasks) {
        bail!("{parked} of {tasks} tasks are scheduled");
    }
    let worker = bench
        .spawn_worker(Mode::Serve, &name, 200, FIRE_AND_FORGET)
        .await?;
    if let Ok(wait) = due.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let fell_due = Instant::now();
    let (promoted_at, unpromoted) = until_empty(&mut bench.admin, "ZCARD", &queue).await?;
    let in_stream_then = size(&mut bench.admin, "XLEN", &stream).await?;
    let (drained_at, undrained) = until_empty(&mut bench.admin, "XLEN", &stream).await?;
    let (child, _) = worker.finish().await.context("stopping the scale worker")?;
    bench.clean().await?;

    let per_task = count64(memory_after.saturating_sub(memory_before)) / count(tasks);
    let promotion = promoted_at.map(|at| at.duration_since(fell_due));
    let drained = drained_at.map(|at| at.duration_since(fell_due));
    let once = |value: f64| Summary::of(&[value]);
    let scenario = "8 scale";
    let mut figures = vec![
        Figure::new(
            scenario,
            "scale.schedule_rate",
            format!("schedule N={tasks} future tasks (add_many ×1000)"),
            "tasks/s",
            once(rate(tasks, scheduled)),
        ),
        Figure::new(
            scenario,
            "scale.memory_per_task",
            "Redis used_memory per scheduled task",
            "bytes",
            once(per_task),
        )
        .at_most(350.0, "≤ 350 bytes"),
    ];
    if let Some(promotion) = promotion {
        figures.push(Figure::new(
            scenario,
            "scale.promotion_rate",
            "promotion: all due at once → schedule empty",
            "tasks/s",
            once(rate(tasks, promotion)),
        ));
    }
    if let Some(drained) = drained {
        figures.push(Figure::new(
            scenario,
            "scale.drain_rate",
            "due → stream empty (c=200, fire-and-forget)",
            "tasks/s",
            once(rate(tasks, drained)),
        ));
    }
    let details = json!({
        "tasks": tasks,
        "runs": 1,
        "why_once": "one run of a million tasks takes minutes; the other scenarios run 3 times",
        "scheduling_s": scheduled.as_secs_f64(),
        "due_after_start_s": margin.as_secs_f64(),
        "scheduling_overran_due_time": late_start,
        "used_memory_before": memory_before,
        "used_memory_after": memory_after,
        "used_memory_per_task_bytes": per_task,
        "promotion_s": promotion.map(|d| d.as_secs_f64()),
        "not_promoted_at_timeout": unpromoted,
        "in_stream_when_schedule_emptied": in_stream_then,
        "drained_s": drained.map(|d| d.as_secs_f64()),
        "not_drained_at_timeout": undrained,
        "worker": child,
        "worker_peak_rss_mb": megabytes(child.hwm_kib),
        "method": "producer and worker fire-and-forget; the worker child (concurrency 200, \
                   run_forever) is started after scheduling and is idle when the tasks fall \
                   due. Promotion is measured with a worker also running the promoted tasks: \
                   due → ZCARD {name}:queue = 0, polled every 5 ms; drained: due → XLEN \
                   {name}:stream = 0 (docket deletes finished messages).",
    });
    Ok(Outcome { figures, details })
}
