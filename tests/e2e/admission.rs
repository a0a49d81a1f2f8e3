//! Admission control on both backends, with several workers: concurrency limits per
//! argument and per task (FIFO, crash-safe), debounce, cooldown and rate limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use docket::{Docket, ExecutionState, Worker, WorkerBuilder};

use crate::support::{
    Run, Target, drain, eventually, max_running, on_both_backends, runs, test_worker, wait_for,
};
use crate::tasks::{Cooled, Debounced, OnePerCustomer, RateDropped, RateLimited, TwoAtATime};

/// Three workers × concurrency 10, run until the docket is empty.
async fn fleet(docket: &Docket) {
    fleet_with(docket, |worker| worker).await;
}

/// [`fleet`], each worker's builder adjusted by `tune` first.
async fn fleet_with(docket: &Docket, tune: impl Fn(WorkerBuilder) -> WorkerBuilder) {
    let workers: Vec<Worker> = (0..3)
        .map(|i| {
            tune(test_worker(docket))
                .name(format!("fleet-{i}"))
                .build()
                .unwrap()
        })
        .collect();
    let running: Vec<_> = workers
        .into_iter()
        .map(|w| tokio::spawn(async move { w.run_until_finished().await }))
        .collect();
    for run in running {
        run.await.unwrap().unwrap();
    }
}

/// The most runs overlapping at any instant.
fn most_overlapping(runs: &[Run]) -> usize {
    runs.iter()
        .map(|a| {
            runs.iter()
                .filter(|b| b.started <= a.started && b.ended.is_none_or(|end| end > a.started))
                .count()
        })
        .max()
        .unwrap_or(0)
}

async fn a_per_argument_limit_never_overlaps_one_value(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let mut customers = HashMap::new();
    for n in 0..20 {
        let customer = format!("c{}", n % 5);
        let execution = docket
            .add(OnePerCustomer::new(probe.clone(), customer.clone(), 100))
            .await
            .unwrap();
        customers.insert(execution.key().to_owned(), customer);
    }
    fleet(&docket).await;
    let all = runs(&probe);
    assert_eq!(all.len(), 20);
    for customer in ["c0", "c1", "c2", "c3", "c4"] {
        let mine: Vec<Run> = all
            .iter()
            .filter(|r| customers[&r.key] == customer)
            .cloned()
            .collect();
        assert_eq!(mine.len(), 4);
        assert_eq!(most_overlapping(&mine), 1, "{customer}: {mine:?}");
    }
    assert!(max_running(&probe) > 1, "other customers ran in parallel");
}

async fn a_per_task_limit_of_two(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    for _ in 0..10 {
        docket
            .add(TwoAtATime::new(probe.clone(), 60))
            .await
            .unwrap();
    }
    // Parked tasks are woken when slots free, not polled. Two paths put a parked task
    // back in the queue: finishing a run wakes the waiters of the slot it releases, and
    // the scheduler's pass (every `scheduling_resolution`) wakes those of holders that
    // died. With that pass an hour apart, the ten runs can only all happen if finishing
    // woke the waiters; otherwise the fleet never finishes.
    let hourly = |worker: WorkerBuilder| worker.scheduling_resolution(Duration::from_hours(1));
    tokio::time::timeout(Duration::from_secs(30), fleet_with(&docket, hourly))
        .await
        .expect("finishing a run woke the task parked for its slot");
    let all = runs(&probe);
    assert_eq!(all.len(), 10);
    assert_eq!(max_running(&probe), 2, "{all:?}");
    let first = all.iter().map(|r| r.started).min().unwrap();
    let last = all.iter().filter_map(|r| r.ended).max().unwrap();
    println!(
        "10 runs, 2 at a time, 60 ms each: {:?}",
        last.duration_since(first)
    );
}

async fn waiters_wake_in_fifo_order(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(OnePerCustomer::new(probe.clone(), "fifo".into(), 400))
        .key("w0")
        .await
        .unwrap();
    for n in 1..=4_u64 {
        docket
            .add(OnePerCustomer::new(probe.clone(), "fifo".into(), 20))
            .key(format!("w{n}"))
            .after(Duration::from_millis(60 * n))
            .await
            .unwrap();
    }
    let waiting = docket.clone();
    let check = tokio::spawn(async move {
        // While w0 runs, the others wait: listed as SCHEDULED although due (parked for
        // the slot, not waiting for their time).
        let what = "w0 to run and w1..w4 to be parked";
        let snapshot = wait_for(Duration::from_secs(20), what, || async {
            let snapshot = waiting.snapshot().await.unwrap();
            let running = snapshot.running.iter().any(|r| r.message.key == "w0");
            let parked = snapshot
                .scheduled
                .iter()
                .filter(|r| r.message.key.starts_with('w') && r.message.when <= snapshot.taken)
                .count();
            if running && parked == 4 {
                Ok(snapshot)
            } else {
                Err(snapshot)
            }
        })
        .await;
        snapshot
            .scheduled
            .iter()
            .filter(|r| r.message.key.starts_with('w'))
            .count()
    });
    drain(&docket).await;
    assert_eq!(
        check.await.unwrap(),
        4,
        "the parked waiters show as SCHEDULED"
    );
    let order: Vec<String> = runs(&probe).into_iter().map(|r| r.key).collect();
    assert_eq!(order, ["w0", "w1", "w2", "w3", "w4"]);
    // Each waiter started right after the one before released its slot.
    let all = runs(&probe);
    for pair in all.windows(2) {
        let gap = pair[1].started.duration_since(pair[0].ended.unwrap());
        println!("release to next start: {gap:?}");
        assert!(gap < Duration::from_millis(300), "{gap:?}");
    }
}

async fn a_dead_holder_s_slot_is_reclaimed(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(OnePerCustomer::new(probe.clone(), "held".into(), 60_000))
        .key("holder")
        .await
        .unwrap();
    let doomed = test_worker(&docket)
        .name("doomed")
        .redelivery_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let crashed = tokio::spawn(async move { doomed.run_forever().await });
    eventually(Duration::from_secs(10), "the holder to start", || {
        runs(&probe).len() == 1
    })
    .await;
    let waiter = docket
        .add(OnePerCustomer::new(probe.clone(), "held".into(), 10))
        .key("waiter")
        .await
        .unwrap();
    // The holder's worker dies: its run, renewals and heartbeats stop at once.
    crashed.abort();
    let _ = crashed.await;
    docket.cancel("holder").await.unwrap();
    let survivor = test_worker(&docket)
        .name("survivor")
        .redelivery_timeout(Duration::from_millis(600))
        .build()
        .unwrap();
    let started = Instant::now();
    survivor.run_until_finished().await.unwrap();
    assert_eq!(waiter.state().await.unwrap(), ExecutionState::Completed);
    println!("waiter ran {:?} after the holder died", started.elapsed());
}

async fn a_hundred_debounced_calls_run_once(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let mut last = None;
    for n in 0..100 {
        last = Some(docket.add(Debounced::new(probe.clone(), n)).await.unwrap());
    }
    drain(&docket).await;
    assert_eq!(runs(&probe).len(), 1);
    assert_eq!(
        last.unwrap().result().await.unwrap(),
        99,
        "the last call ran"
    );
}

async fn cooldown_drops_calls_within_the_window(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let mut executions = Vec::new();
    for n in 0..5 {
        executions.push(docket.add(Cooled::new(probe.clone(), n)).await.unwrap());
    }
    fleet(&docket).await;
    assert_eq!(runs(&probe).len(), 1);
    let mut dropped = 0;
    for execution in &executions {
        let record = execution.record().await.unwrap().unwrap();
        if record.state == ExecutionState::Cancelled {
            dropped += 1;
            let reason = record.error.unwrap();
            assert!(reason.is_refused(), "{reason:?}");
            assert!(reason.message().contains("cooldown"), "{reason}");
        }
    }
    assert_eq!(dropped, 4);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = docket.add(Cooled::new(probe.clone(), 9)).await.unwrap();
    fleet(&docket).await;
    assert_eq!(
        after.result().await.unwrap(),
        9,
        "a call after the window runs"
    );
}

async fn rate_limits_wait_or_drop(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    for _ in 0..50 {
        docket.add(RateLimited::new(probe.clone())).await.unwrap();
    }
    let started = Instant::now();
    fleet(&docket).await;
    let took = started.elapsed();
    assert_eq!(runs(&probe).len(), 50);
    assert!(
        took >= Duration::from_secs(4),
        "50 calls at 10/s took {took:?}"
    );
    let starts: Vec<Instant> = runs(&probe).iter().map(|r| r.started).collect();
    for start in &starts {
        let within = starts
            .iter()
            .filter(|s| **s >= *start && s.duration_since(*start) < Duration::from_millis(900))
            .count();
        assert!(within <= 10, "{within} runs within one window");
    }

    let dropping = format!("{probe}-drop");
    let mut executions = Vec::new();
    for _ in 0..50 {
        executions.push(
            docket
                .add(RateDropped::new(dropping.clone()))
                .await
                .unwrap(),
        );
    }
    fleet(&docket).await;
    assert_eq!(runs(&dropping).len(), 10);
    let mut dropped = 0;
    for execution in &executions {
        if execution.state().await.unwrap() == ExecutionState::Cancelled {
            dropped += 1;
        }
    }
    assert_eq!(dropped, 40);
}

/// A holder running far past its lease keeps its slot by renewing it.
async fn a_long_holder_keeps_its_slot_by_renewing(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(OnePerCustomer::new(probe.clone(), "long".into(), 1_500))
        .key("long-holder")
        .await
        .unwrap();
    docket
        .add(OnePerCustomer::new(probe.clone(), "long".into(), 10))
        .key("patient")
        .after(Duration::from_millis(100))
        .await
        .unwrap();
    test_worker(&docket)
        .redelivery_timeout(Duration::from_millis(400))
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();
    let all = runs(&probe);
    assert_eq!(all.len(), 2);
    assert_eq!(most_overlapping(&all), 1, "{all:?}");
}

on_both_backends!(
    a_long_holder_keeps_its_slot_by_renewing,
    a_per_argument_limit_never_overlaps_one_value,
    a_per_task_limit_of_two,
    waiters_wake_in_fifo_order,
    a_dead_holder_s_slot_is_reclaimed,
    a_hundred_debounced_calls_run_once,
    cooldown_drops_calls_within_the_window,
    rate_limits_wait_or_drop,
);
