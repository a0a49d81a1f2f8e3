//! Strikes on both backends: operators and scopes at add time, runs cancelled at run
//! time, strikes made while workers run, tolerance of mismatched types, compaction, and
//! automatic chains stopped and brought back.

use std::time::{Duration, Instant};

use docket::strikes::{Operator, Strike};
use docket::{Disposition, Docket, ExecutionState};
use serde_json::json;

use crate::support::{
    Target, counted, drain, eventually, on_both_backends, runs, test_worker, wait_for,
};
use crate::tasks::{Charge, Refund, fast_sweeps};

async fn disposition(docket: &Docket, customer: &str, amount: u64, vip: bool) -> Disposition {
    docket
        .add(Charge::new("strikes".into(), customer.into(), amount, vip))
        .await
        .unwrap()
        .disposition()
}

/// A charge's customer, amount and VIP flag.
type Call = (&'static str, u64, bool);

async fn every_operator_and_scope_at_add_time(target: Target) {
    let docket = target.docket().await;
    let cases: Vec<(Strike, Vec<(Call, bool)>)> = vec![
        (Strike::task("charge"), vec![(("a", 1, false), true)]),
        (
            Strike::when("customer", Operator::Equal, "bad").for_task("charge"),
            vec![(("bad", 1, false), true), (("good", 1, false), false)],
        ),
        (
            Strike::when("customer", Operator::NotEqual, "good"),
            vec![(("bad", 1, false), true), (("good", 1, false), false)],
        ),
        (
            Strike::when("amount", Operator::Greater, 100),
            vec![(("a", 101, false), true), (("a", 100, false), false)],
        ),
        (
            Strike::when("amount", Operator::GreaterOrEqual, 100),
            vec![(("a", 100, false), true), (("a", 99, false), false)],
        ),
        (
            Strike::when("amount", Operator::Less, 10),
            vec![(("a", 9, false), true), (("a", 10, false), false)],
        ),
        (
            Strike::when("amount", Operator::LessOrEqual, 10),
            vec![(("a", 10, false), true), (("a", 11, false), false)],
        ),
        (
            Strike::when("amount", Operator::Between, json!([10, 20])),
            vec![
                (("a", 10, false), true),
                (("a", 20, false), true),
                (("a", 21, false), false),
            ],
        ),
        (
            Strike::when("vip", Operator::Equal, true),
            vec![(("a", 1, true), true), (("a", 1, false), false)],
        ),
    ];
    for (strike, calls) in cases {
        docket.strike(strike.clone()).await.unwrap();
        assert_eq!(docket.strikes(), std::slice::from_ref(&strike));
        for ((customer, amount, vip), struck) in calls {
            let got = disposition(&docket, customer, amount, vip).await;
            let want = if struck {
                Disposition::Struck
            } else {
                Disposition::Scheduled
            };
            assert_eq!(got, want, "{strike} against ({customer}, {amount}, {vip})");
        }
        docket.restore(strike).await.unwrap();
        assert!(docket.strikes().is_empty());
    }
    // A parameter strike with no task covers every task with that parameter.
    docket
        .strike(Strike::when("customer", Operator::Equal, "c1"))
        .await
        .unwrap();
    let refund = docket
        .add(Refund::new("strikes".into(), "c1".into()))
        .await
        .unwrap();
    assert_eq!(refund.disposition(), Disposition::Struck);
    assert!(
        refund.record().await.unwrap().is_none(),
        "nothing was written"
    );
    // A bad strike is refused by name and changes nothing.
    let error = docket
        .strike(Strike::when("amount", Operator::Between, 5))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("two-element array"), "{error}");
    assert_eq!(docket.strikes().len(), 1);
}

async fn whole_task_and_parameter_strikes_coexist(target: Target) {
    let docket = target.docket().await;
    let whole = Strike::task("charge");
    let narrow = Strike::when("customer", Operator::Equal, "bad").for_task("charge");
    docket.strike(whole.clone()).await.unwrap();
    docket.strike(narrow.clone()).await.unwrap();
    assert_eq!(
        disposition(&docket, "good", 1, false).await,
        Disposition::Struck
    );
    docket.restore(whole).await.unwrap();
    assert_eq!(
        docket.strikes(),
        std::slice::from_ref(&narrow),
        "restoring one leaves the other"
    );
    assert_eq!(
        disposition(&docket, "good", 1, false).await,
        Disposition::Scheduled
    );
    assert_eq!(
        disposition(&docket, "bad", 1, false).await,
        Disposition::Struck
    );
    // Another handle, connected afterwards, replays the same strikes.
    let other = target.docket().await;
    assert!(other.strikes_loaded(Duration::from_secs(5)).await);
    assert_eq!(other.strikes(), [narrow]);
}

async fn calls_added_before_a_strike_are_cancelled_at_run_time(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let bad = docket
        .add(Charge::new(probe.clone(), "bad".into(), 1, false))
        .await
        .unwrap();
    let good = docket
        .add(Charge::new(probe.clone(), "good".into(), 1, false))
        .await
        .unwrap();
    docket
        .strike(Strike::when("customer", Operator::Equal, "bad"))
        .await
        .unwrap();
    drain(&docket).await;
    assert_eq!(bad.state().await.unwrap(), ExecutionState::Cancelled);
    assert_eq!(good.state().await.unwrap(), ExecutionState::Completed);
    assert_eq!(runs(&probe).len(), 1);
    let error = bad.record().await.unwrap().unwrap().error.unwrap();
    assert!(error.message().starts_with("stricken by"), "{error}");
    let worker = [("where", "worker")];
    assert_eq!(counted("docket_tasks_stricken", &target.name, &worker), 1);
    assert_eq!(counted("docket_tasks_dropped", &target.name, &[]), 0);
}

async fn a_strike_made_while_workers_run_takes_effect_within_a_second(target: Target) {
    let worker_docket = target.docket().await;
    let producer = target.docket().await;
    let operator = target.docket().await;
    let probe = target.name.clone();
    let later = producer
        .add(Charge::new(probe.clone(), "bad".into(), 1, false))
        .after(Duration::from_millis(1500))
        .await
        .unwrap();
    let worker = test_worker(&worker_docket).build().unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let struck_at = Instant::now();
    operator.strike(Strike::task("charge")).await.unwrap();
    eventually(
        Duration::from_secs(1),
        "every handle to see the strike",
        || !worker_docket.strikes().is_empty() && !producer.strikes().is_empty(),
    )
    .await;
    let seen_in = struck_at.elapsed();
    println!("strike seen by the other handles in {seen_in:?}");
    assert_eq!(
        disposition(&producer, "x", 1, false).await,
        Disposition::Struck
    );
    wait_for(
        Duration::from_secs(5),
        "the parked call to come due",
        || async {
            let state = later.state().await.unwrap();
            if state.is_terminal() {
                Ok(())
            } else {
                Err(state)
            }
        },
    )
    .await;
    assert_eq!(later.state().await.unwrap(), ExecutionState::Cancelled);
    assert!(runs(&probe).is_empty());
    handle.shutdown();
    running.await.unwrap().unwrap();
}

async fn mismatched_types_are_no_match_and_the_worker_goes_on(target: Target) {
    let docket = target.docket().await;
    docket
        .strike(Strike::when("amount", Operator::Greater, "a lot"))
        .await
        .unwrap();
    docket
        .strike(Strike::when("customer", Operator::Between, json!([1, 5])))
        .await
        .unwrap();
    let execution = docket
        .add(Charge::new(target.name.clone(), "c".into(), 1_000, false))
        .await
        .unwrap();
    assert_eq!(execution.disposition(), Disposition::Scheduled);
    drain(&docket).await;
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
}

async fn compaction_keeps_exactly_the_strikes_in_effect(target: Target) {
    let docket = target.docket().await;
    let mut kept = Vec::new();
    for n in 0..400_u64 {
        let strike = Strike::when("amount", Operator::Equal, n);
        docket.strike(strike.clone()).await.unwrap();
        if n % 80 == 0 {
            kept.push(strike);
        } else {
            docket.restore(strike).await.unwrap();
        }
    }
    assert_eq!(docket.strikes(), kept);
    let fresh = target.docket().await;
    assert!(fresh.strikes_loaded(Duration::from_secs(5)).await);
    assert_eq!(
        fresh.strikes(),
        kept,
        "a new handle replays the compacted stream"
    );
    if let Some(redis) = &target.redis {
        let length: usize = ::redis::cmd("XLEN")
            .arg(format!("{}:strikes", target.name))
            .query(&mut redis.connection())
            .unwrap();
        assert!(length <= 257, "the stream was compacted: {length} entries");
    }
}

async fn a_strike_stops_an_automatic_chain_and_restore_brings_it_back(target: Target) {
    let docket = target.docket().await;
    let worker = test_worker(&docket)
        .schedule_automatic_tasks(true)
        .automatic_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    let name = target.name.clone();
    eventually(Duration::from_secs(10), "the chain to run", || {
        fast_sweeps(&name) >= 3
    })
    .await;

    docket.strike(Strike::task("fast_sweep")).await.unwrap();
    // The strike has taken effect once the chain's next run was cancelled: from then on
    // no run is in progress and none may start.
    let state = || async {
        let execution = docket.get_execution("fast_sweep").await.unwrap().unwrap();
        execution.state().await.unwrap()
    };
    wait_for(
        Duration::from_secs(5),
        "the struck chain to end",
        || async {
            match state().await {
                ExecutionState::Cancelled => Ok(()),
                other => Err(other),
            }
        },
    )
    .await;
    let stopped = fast_sweeps(&name);
    // That nothing happens can only be watched for a while: 800 ms, in which an
    // unstruck chain (every 100 ms) would run eight times and the reseed (every 200 ms)
    // would try four times.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fast_sweeps(&name),
        stopped,
        "no run while struck, reseeds included"
    );
    assert_eq!(
        state().await,
        ExecutionState::Cancelled,
        "the chain stays ended"
    );

    docket.restore(Strike::task("fast_sweep")).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "the reseed to bring the chain back",
        || fast_sweeps(&name) >= stopped + 2,
    )
    .await;
    handle.shutdown();
    running.await.unwrap().unwrap();
}

on_both_backends!(
    every_operator_and_scope_at_add_time,
    whole_task_and_parameter_strikes_coexist,
    calls_added_before_a_strike_are_cancelled_at_run_time,
    a_strike_made_while_workers_run_takes_effect_within_a_second,
    mismatched_types_are_no_match_and_the_worker_goes_on,
    compaction_keeps_exactly_the_strikes_in_effect,
    a_strike_stops_an_automatic_chain_and_restore_brings_it_back,
);
