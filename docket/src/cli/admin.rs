//! The operator's commands: `clear`, `snapshot`, `workers`, `tasks`, `strike`, `restore`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::Outcome;
use super::args::{
    DeadLettersCommand, DelayArgs, GlobalArgs, StrikeArgs, TasksCommand, WorkersCommand,
};
use super::table::{Table, relative, short, timestamp};
use crate::client::{Docket, Snapshot};
use crate::execution::Execution;
use crate::model::{ActiveWorker, DeadLetter, Disposition, ExecutionRecord, Strike};
use crate::task::Task;
use crate::worker::builtin::{Fail, Sleep, Trace};

fn failed(what: &str, docket: &Docket) -> impl FnOnce(crate::Error) -> String {
    let name = docket.name().to_owned();
    move |error| format!("{what} of docket `{name}` failed: {error}")
}

pub(super) async fn clear(docket: &Docket) -> Outcome {
    let cleared = docket.clear().await.map_err(failed("clear", docket))?;
    println!(
        "cleared {cleared} queued and scheduled task{} from docket `{}`",
        if cleared == 1 { "" } else { "s" },
        docket.name()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn snapshot(docket: &Docket, stats: bool) -> Outcome {
    let snapshot = docket
        .snapshot()
        .await
        .map_err(failed("snapshot", docket))?;
    print!("{}", render_snapshot(docket, &snapshot, stats));
    Ok(ExitCode::SUCCESS)
}

fn render_snapshot(docket: &Docket, snapshot: &Snapshot, stats: bool) -> String {
    let now = snapshot.taken;
    let mut out = format!(
        "docket `{}` at {} ({})\n{} running, {} queued, {} scheduled; {} worker{}\n\n",
        docket.name(),
        crate::backend::redact(docket.url()),
        timestamp(now),
        snapshot.running.len(),
        snapshot.queued.len(),
        snapshot.scheduled.len(),
        snapshot.workers.len(),
        if snapshot.workers.len() == 1 { "" } else { "s" },
    );
    let mut table = Table::new(&["WHEN", "TASK", "KEY", "STATE", "WORKER", "STARTED"]);
    let records = snapshot
        .running
        .iter()
        .chain(&snapshot.queued)
        .chain(&snapshot.scheduled);
    for record in records {
        table.row(vec![
            format!(
                "{} ({})",
                timestamp(record.message.when),
                relative(record.message.when, now)
            ),
            record.message.function.clone(),
            record.message.key.clone(),
            record.state.as_str().to_owned(),
            record.worker.clone().unwrap_or_else(|| "-".into()),
            record
                .started_at
                .map_or_else(|| "-".into(), |at| relative(at, now)),
        ]);
    }
    if table.is_empty() {
        out.push_str("no tasks\n");
    } else {
        out.push_str(&table.render());
    }
    if stats {
        out.push('\n');
        out.push_str(&render_stats(snapshot));
    }
    if !snapshot.dead_letters.is_empty() {
        out.push('\n');
        out.push_str(&render_dead_letters(&snapshot.dead_letters));
    }
    let strikes = docket.strikes();
    if !strikes.is_empty() {
        out.push('\n');
        out.push_str(&render_strikes(&strikes));
    }
    out
}

#[derive(Default)]
struct TaskStats {
    running: usize,
    queued: usize,
    scheduled: usize,
    oldest_queued: Option<SystemTime>,
}

fn render_stats<'a>(snapshot: &'a Snapshot) -> String {
    let mut by_task: BTreeMap<&str, TaskStats> = BTreeMap::new();
    let mut tally = |records: &'a [ExecutionRecord], bump: fn(&mut TaskStats, &ExecutionRecord)| {
        for record in records {
            bump(by_task.entry(&record.message.function).or_default(), record);
        }
    };
    tally(&snapshot.running, |s, _| s.running += 1);
    tally(&snapshot.queued, |s, r| {
        s.queued += 1;
        s.oldest_queued = Some(
            s.oldest_queued
                .map_or(r.message.when, |t| t.min(r.message.when)),
        );
    });
    tally(&snapshot.scheduled, |s, _| s.scheduled += 1);
    let mut table = Table::new(&["TASK", "RUNNING", "QUEUED", "SCHEDULED", "OLDEST QUEUED"]);
    for (task, s) in &by_task {
        table.row(vec![
            (*task).to_owned(),
            s.running.to_string(),
            s.queued.to_string(),
            s.scheduled.to_string(),
            s.oldest_queued
                .map_or_else(|| "-".into(), |at| relative(at, snapshot.taken)),
        ]);
    }
    let mut out = String::from("per task:\n");
    if table.is_empty() {
        out.push_str("no tasks\n");
    } else {
        out.push_str(&table.render());
    }
    if let Some(oldest) = snapshot.queued.iter().map(|r| r.message.when).min() {
        let waited = snapshot.taken.duration_since(oldest).unwrap_or_default();
        let _ = writeln!(out, "oldest queued task has waited {}", short(waited));
    }
    out
}

pub(super) async fn workers(docket: &Docket, which: WorkersCommand) -> Outcome {
    let (workers, empty) = match &which {
        WorkersCommand::Ls => (
            docket
                .workers()
                .await
                .map_err(failed("listing workers", docket))?,
            format!("no workers are running for docket `{}`", docket.name()),
        ),
        WorkersCommand::ForTask { task } => (
            docket
                .task_workers(task)
                .await
                .map_err(failed("listing workers", docket))?,
            format!("no workers of docket `{}` can run `{task}`", docket.name()),
        ),
    };
    if workers.is_empty() {
        println!("{empty}");
    } else {
        let now = SystemTime::now();
        print!("{}", render_workers(&workers, now));
    }
    Ok(ExitCode::SUCCESS)
}

fn render_workers(workers: &[ActiveWorker], now: SystemTime) -> String {
    let mut table = Table::new(&["WORKER", "LAST SEEN", "TASKS"]);
    for worker in workers {
        table.row(vec![
            worker.name.clone(),
            relative(worker.last_seen, now),
            worker.tasks.join(", "),
        ]);
    }
    table.render()
}

pub(super) async fn add_builtin(docket: &Docket, which: TasksCommand) -> Outcome {
    let execution = match which {
        TasksCommand::Trace { message, when } => add(docket, Trace::new(message), &when).await,
        TasksCommand::Fail { message, when } => add(docket, Fail::new(message), &when).await,
        TasksCommand::Sleep { seconds, when } => add(docket, Sleep::new(seconds), &when).await,
    }
    .map_err(failed("adding a task", docket))?;
    if execution.disposition() == Disposition::Struck {
        println!(
            "struck {} task {}: a strike in docket `{}` blocks it; nothing was added",
            execution.function(),
            execution.key(),
            docket.name()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "added {} task {} to docket `{}`, due {}",
        execution.function(),
        execution.key(),
        docket.name(),
        timestamp(execution.when())
    );
    Ok(ExitCode::SUCCESS)
}

async fn add<T: Task>(docket: &Docket, task: T, when: &DelayArgs) -> crate::Result<Execution> {
    let added = match when.delay {
        Some(delay) => docket.add(task).after(delay).await,
        None => docket.add(task).await,
    };
    added.map(Execution::untyped)
}

/// `docket strike` / `docket restore`: checked before connecting, then applied.
pub(super) async fn strike(global: &GlobalArgs, args: &StrikeArgs, strike: bool) -> Outcome {
    let spec = args.spec()?;
    let instruction = match spec.condition {
        None => Strike::task(spec.task.clone().unwrap_or_default()),
        Some((parameter, operator, value)) => {
            let condition = Strike::when(parameter, operator, value);
            match &spec.task {
                Some(task) => condition.for_task(task.clone()),
                None => condition,
            }
        }
    };
    let docket = super::connect_shared(global, if strike { "strike" } else { "restore" }).await?;
    let verb = if strike { "struck" } else { "restored" };
    let done = if strike {
        docket.strike(instruction.clone()).await
    } else {
        docket.restore(instruction.clone()).await
    };
    done.map_err(failed(
        if strike { "a strike" } else { "a restore" },
        &docket,
    ))?;
    println!("{verb} `{instruction}` in docket `{}`", docket.name());
    print!("{}", render_strikes(&docket.strikes()));
    Ok(ExitCode::SUCCESS)
}

/// `docket dead-letters ls|retry KEY|purge`.
pub(super) async fn dead_letters(docket: &Docket, which: DeadLettersCommand) -> Outcome {
    match which {
        DeadLettersCommand::Ls => {
            let letters = docket
                .dead_letters()
                .await
                .map_err(failed("listing dead letters", docket))?;
            print!("{}", render_dead_letters(&letters));
        }
        DeadLettersCommand::Retry { key } => {
            match docket
                .retry_dead_letter(&key)
                .await
                .map_err(failed("retrying a dead letter", docket))?
            {
                Some(execution) => println!(
                    "added {} task {} again to docket `{}`",
                    execution.function(),
                    execution.key(),
                    docket.name()
                ),
                None => {
                    return Err(format!(
                        "no dead letter with key `{key}` in docket `{}`",
                        docket.name()
                    ));
                }
            }
        }
        DeadLettersCommand::Purge => {
            let purged = docket
                .purge_dead_letters()
                .await
                .map_err(failed("purging dead letters", docket))?;
            println!(
                "purged {purged} dead letters from docket `{}`",
                docket.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render_dead_letters(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let mut table = Table::new(&["DEAD SINCE", "TASK", "KEY", "WHY"]);
    for letter in letters {
        table.row(vec![
            letter.dead_at.clone(),
            letter.function.clone(),
            letter.key.clone(),
            letter.error.clone(),
        ]);
    }
    format!("dead letters:\n{}", table.render())
}

/// `docket strikes`: the strikes in effect.
pub(super) async fn strikes(docket: &Docket) -> Outcome {
    if !docket.strikes_loaded(Duration::from_secs(10)).await {
        return Err(format!(
            "could not read the strikes of docket `{}`",
            docket.name()
        ));
    }
    print!("{}", render_strikes(&docket.strikes()));
    Ok(ExitCode::SUCCESS)
}

fn render_strikes(strikes: &[Strike]) -> String {
    if strikes.is_empty() {
        return "no strikes in effect\n".to_owned();
    }
    let mut table = Table::new(&["TASK", "PARAMETER", "OPERATOR", "VALUE"]);
    for strike in strikes {
        let (parameter, operator, value) = strike.condition().map_or_else(
            || ("*".to_owned(), String::new(), String::new()),
            |(p, o, v)| (p.to_owned(), o.to_string(), v.to_string()),
        );
        table.row(vec![
            strike.task_name().unwrap_or("*").to_owned(),
            parameter,
            operator,
            value,
        ]);
    }
    format!("strikes in effect:\n{}", table.render())
}
