//! Behaviours on both backends: retries, perpetual chains, automatic seeding, cron,
//! timeouts and cancellation of running tasks.

use std::time::{Duration, Instant, SystemTime};

use docket::{Docket, ExecutionState, TaskError};

use crate::support::{
    Run, Target, drain, eventually, on_both_backends, record_of, runs, test_worker, wait_for,
};
use crate::tasks::{
    AlwaysLate, BacksOff, CountsUp, Extends, FailsThrice, ForcesRetries, Probed, SelfPaced,
    SlowFailure, Stubborn, Ticks,
};

fn gaps(runs: &[Run]) -> Vec<Duration> {
    runs.windows(2)
        .map(|pair| pair[1].started.duration_since(pair[0].started))
        .collect()
}

async fn final_error(docket: &Docket, key: &str) -> TaskError {
    let record = record_of(docket, key).await;
    assert_eq!(record.state, ExecutionState::Failed, "{record:?}");
    record.error.unwrap()
}

/// Scheduling tolerance: the scheduler's 20 ms resolution, plus a loaded CI machine.
const SLACK: Duration = Duration::from_secs(1);

async fn attempts_count_the_first_run_and_end_failed_with_the_last_error(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(FailsThrice::new(target.name.clone()))
        .key("thrice")
        .await
        .unwrap();
    drain(&docket).await;
    let runs = runs(&target.name);
    assert_eq!(
        runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    for gap in gaps(&runs) {
        assert!(gap >= Duration::from_millis(100), "{gap:?}");
    }
    assert_eq!(
        final_error(&docket, "thrice").await.message(),
        "attempt 3 failed"
    );
    let record = execution.record().await.unwrap().unwrap();
    assert_eq!(record.message.attempt, 3);
    assert_eq!(
        record.message.generation, 3,
        "each retry is a new generation of the key"
    );
}

async fn exponential_gaps_follow_the_formula(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(BacksOff::new(target.name.clone()))
        .await
        .unwrap();
    drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 4);
    let gaps = gaps(&runs(&target.name));
    // min(200ms · 2^(n-1), 500ms) after attempts 1, 2, 3.
    let expected = [200, 400, 500].map(Duration::from_millis);
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    for (gap, delay) in gaps.iter().zip(expected) {
        assert!(
            *gap >= delay && *gap < delay + SLACK,
            "{gap:?} for {delay:?}"
        );
    }
}

async fn forever_keeps_going(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(Stubborn::new(target.name.clone(), 12))
        .await
        .unwrap();
    drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 12);
    assert_eq!(runs(&target.name).len(), 12);
}

async fn forced_retry_delays_are_honoured(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(ForcesRetries::new(target.name.clone(), 300))
        .await
        .unwrap();
    drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 3);
    let gaps = gaps(&runs(&target.name));
    assert_eq!(gaps.len(), 2);
    for gap in gaps {
        assert!(
            gap >= Duration::from_millis(300) && gap < Duration::from_millis(300) + SLACK,
            "{gap:?}"
        );
    }
}

/// `replace` while a failing run is running: its retry is superseded, never run.
async fn a_retry_that_lost_to_replace_is_superseded(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(SlowFailure::new(probe.clone(), 300))
        .key("raced")
        .await
        .unwrap();
    let worker = test_worker(&docket).build().unwrap();
    let running = tokio::spawn(async move { worker.run_until_finished().await });
    eventually(
        Duration::from_secs(10),
        "the first attempt to start",
        || runs(&probe).len() == 1,
    )
    .await;
    let replacement = docket
        .replace(Probed::new(probe.clone(), 0))
        .key("raced")
        .await
        .unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(replacement.result().await.unwrap(), "raced");
    let all = runs(&probe);
    assert_eq!(all.len(), 2, "the failed attempt was not retried: {all:?}");
    assert!(all.iter().all(|r| r.attempt == 1), "{all:?}");
    // And a parked retry is superseded too.
    docket
        .add(FailsThrice::new(format!("{probe}-parked")))
        .key("parked")
        .await
        .unwrap();
    let worker = test_worker(&docket).build().unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    let parked_probe = format!("{probe}-parked");
    eventually(Duration::from_secs(10), "the first attempt", || {
        !runs(&parked_probe).is_empty()
    })
    .await;
    let replaced = docket
        .replace(Probed::new(parked_probe.clone(), 0))
        .key("parked")
        .after(Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(replaced.result().await.unwrap(), "parked");
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.shutdown();
    running.await.unwrap().unwrap();
    let parked_runs = runs(&parked_probe);
    assert_eq!(parked_runs.len(), 2, "{parked_runs:?}");
}

async fn a_perpetual_task_runs_on_cadence_and_survives_failures(target: Target) {
    let docket = target.docket().await;
    docket
        .add(Ticks::new(target.name.clone()))
        .key("ticker")
        .await
        .unwrap();
    test_worker(&docket)
        .build()
        .unwrap()
        .run_at_most([("ticker", 5)])
        .await
        .unwrap();
    let runs = runs(&target.name);
    assert_eq!(runs.len(), 5, "failures did not end the chain: {runs:?}");
    assert!(runs.iter().all(|r| r.attempt == 1), "{runs:?}");
    // The task notes its own start, a little after the start the cadence counts from,
    // and that little varies on a loaded machine (a gap of 148.5 ms was seen).
    for gap in gaps(&runs) {
        assert!(
            gap >= Duration::from_millis(145) && gap < Duration::from_millis(150) + SLACK,
            "start-to-start cadence: {gap:?}"
        );
    }
}

async fn perpetual_cancel_and_perpetuate_from_inside(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(CountsUp::new(target.name.clone(), 1, 4))
        .key("counter")
        .await
        .unwrap();
    drain(&docket).await;
    assert_eq!(
        runs(&target.name).len(),
        4,
        "cancel() ended the chain after n = 4"
    );
    let record = execution.record().await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    assert_eq!(record.message.generation, 4);
    assert!(
        record.message.args.contains("\"n\":4"),
        "perpetuate passed new arguments: {}",
        record.message.args
    );
    assert_eq!(
        docket
            .get_execution("counter")
            .await
            .unwrap()
            .unwrap()
            .typed::<u32>()
            .result()
            .await
            .unwrap(),
        4
    );

    let paced = format!("{}-paced", target.name);
    docket.add(SelfPaced::new(paced.clone())).await.unwrap();
    drain(&docket).await;
    let gaps = gaps(&runs(&paced));
    assert_eq!(gaps.len(), 2, "after() scheduled exactly two more runs");
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(250)),
        "{gaps:?}"
    );
}

async fn automatic_tasks_are_seeded_once_by_many_workers(target: Target) {
    let docket = target.docket().await;
    let workers: Vec<_> = (0..3)
        .map(|i| {
            test_worker(&docket)
                .name(format!("seeder-{i}"))
                .schedule_automatic_tasks(true)
                .build()
                .unwrap()
        })
        .collect();
    let handles: Vec<_> = workers
        .iter()
        .map(docket::Worker::shutdown_handle)
        .collect();
    let running: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(async move { w.run_forever().await }))
        .collect();
    wait_for(
        Duration::from_secs(10),
        "the hourly sweep to run",
        || async {
            let execution = docket.get_execution("hourly_sweep").await.unwrap();
            let generation = execution.map(|e| e.generation());
            if generation >= Some(2) {
                Ok(())
            } else {
                Err(generation)
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snapshot = docket.snapshot().await.unwrap();
    handles
        .iter()
        .for_each(docket::worker::ShutdownHandle::shutdown);
    for run in running {
        run.await.unwrap().unwrap();
    }
    let record = record_of(&docket, "hourly_sweep").await;
    assert_eq!(
        record.message.generation, 2,
        "seeded once, ran once, rescheduled once: {record:?}"
    );
    assert_eq!(record.state, ExecutionState::Scheduled);
    let sweeps: Vec<_> = snapshot
        .scheduled
        .iter()
        .filter(|r| r.message.key == "hourly_sweep")
        .collect();
    assert_eq!(sweeps.len(), 1, "{snapshot:?}");
    let next = sweeps[0]
        .message
        .when
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        next > Duration::from_mins(59),
        "the next run is an hour after the first: {next:?}"
    );

    // The cron task is seeded at its next 09:30 in Paris, not run now.
    let report = snapshot
        .scheduled
        .iter()
        .find(|r| r.message.key == "morning_report")
        .expect("the cron task is seeded");
    let local = chrono::DateTime::<chrono::Utc>::from(report.message.when)
        .with_timezone(&chrono_tz::Europe::Paris)
        .format("%H:%M:%S")
        .to_string();
    assert_eq!(local, "09:30:00");
}

async fn timeouts_fire_retry_and_can_be_extended(target: Target) {
    let docket = target.docket().await;
    let late = docket
        .add(AlwaysLate::new(target.name.clone()))
        .key("late")
        .await
        .unwrap();
    let extended = docket.add(Extends::new(450, 400)).await.unwrap();
    let tight = docket.add(Extends::new(450, 0)).key("tight").await.unwrap();
    let started = Instant::now();
    drain(&docket).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "timeouts aborted the sleeps"
    );

    let error = final_error(&docket, "late").await;
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(runs(&target.name).len(), 2, "retry applies to timeouts");
    assert_eq!(late.record().await.unwrap().unwrap().message.attempt, 2);

    let left = extended.result().await.unwrap();
    assert!(
        left > 450 && left <= 700,
        "extend moved the deadline: {left} ms were left"
    );
    assert!(final_error(&docket, "tight").await.is_timeout());
    drop(tight);
}

async fn a_cancelled_running_task_stops_at_once_and_is_not_retried(target: Target) {
    let docket = target.docket().await;
    let execution = docket
        .add(SlowFailure::new(target.name.clone(), 5_000))
        .key("doomed")
        .await
        .unwrap();
    let worker = test_worker(&docket).build().unwrap();
    let running = tokio::spawn(async move { worker.run_until_finished().await });
    eventually(Duration::from_secs(10), "the task to start", || {
        runs(&target.name).len() == 1
    })
    .await;
    let cancelled_at = Instant::now();
    assert!(execution.cancel().await.unwrap());
    // The task's future is dropped (its guard records when) long before its 5 s sleep.
    eventually(
        Duration::from_secs(2),
        "the running task to be dropped",
        || runs(&target.name)[0].ended.is_some(),
    )
    .await;
    let stopped = runs(&target.name)[0]
        .ended
        .unwrap()
        .duration_since(cancelled_at);
    running.await.unwrap().unwrap();
    println!("cancel to task dropped: {stopped:?}");
    assert!(stopped < Duration::from_secs(1), "{stopped:?}");
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Cancelled);
    assert_eq!(
        runs(&target.name).len(),
        1,
        "a cancelled task is not retried"
    );
}

on_both_backends!(
    attempts_count_the_first_run_and_end_failed_with_the_last_error,
    exponential_gaps_follow_the_formula,
    forever_keeps_going,
    forced_retry_delays_are_honoured,
    a_retry_that_lost_to_replace_is_superseded,
    a_perpetual_task_runs_on_cadence_and_survives_failures,
    perpetual_cancel_and_perpetuate_from_inside,
    automatic_tasks_are_seeded_once_by_many_workers,
    timeouts_fire_retry_and_can_be_extended,
    a_cancelled_running_task_stops_at_once_and_is_not_retried,
);
