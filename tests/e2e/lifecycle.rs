//! The task lifecycle, scenario by scenario, on both backends.

use std::time::{Duration, Instant, SystemTime};

use docket::{Disposition, Docket, Error, Event, ExecutionState};
use futures::StreamExt;

use crate::support::{Target, eventually, max_running, on_both_backends, runs, test_worker};
use crate::tasks::{
    AddNumbers, AlwaysFails, Chain, FailsThrice, Inspect, Inspected, Panics, Probed, RenamedTask,
    WithProgress,
};

async fn run_until_finished(docket: &Docket) {
    tokio::time::timeout(
        Duration::from_secs(30),
        test_worker(docket).build().unwrap().run_until_finished(),
    )
    .await
    .expect("the worker finished within 30 s")
    .expect("the worker ran");
}

async fn immediate_task_runs_and_returns_its_result(target: Target) {
    let docket = target.docket().await;
    let execution = docket.add(AddNumbers::new(2, 40)).await.unwrap();
    assert_eq!(execution.disposition(), Disposition::Scheduled);
    assert_eq!(execution.generation(), 1);
    assert_eq!(execution.attempt(), 1);
    assert_eq!(execution.function(), "add_numbers");
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Queued);
    // The default key is a UUID v7 in 22 URL-safe characters.
    assert_eq!(execution.key().len(), 22);
    assert!(
        execution
            .key()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'~'),
        "{}",
        execution.key()
    );

    run_until_finished(&docket).await;
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
    assert_eq!(execution.result().await.unwrap(), 42);
    let record = execution.record().await.unwrap().unwrap();
    assert!(record.worker.is_some());
    assert!(record.started_at.is_some() && record.completed_at.is_some());
    assert_eq!(record.message.args, r#"{"a":2,"b":40}"#);
}

async fn future_task_waits_for_its_time(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let due = SystemTime::now() + Duration::from_millis(600);
    let execution = docket
        .add(Probed::new(probe.clone(), 0))
        .key("later")
        .at(due)
        .await
        .unwrap();
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Scheduled);
    let snapshot = docket.snapshot().await.unwrap();
    assert_eq!(snapshot.scheduled.len(), 1);
    assert_eq!(snapshot.scheduled[0].message.key, "later");

    run_until_finished(&docket).await;
    let record = execution.record().await.unwrap().unwrap();
    assert_eq!(record.state, ExecutionState::Completed);
    let started = record.started_at.unwrap();
    assert!(
        started >= due,
        "started {started:?} before it was due {due:?}"
    );
    assert_eq!(runs(&probe).len(), 1);
}

async fn after_delays_from_now(target: Target) {
    let docket = target.docket().await;
    let before = SystemTime::now();
    let execution = docket
        .add(AddNumbers::new(1, 1))
        .after(Duration::from_hours(1))
        .await
        .unwrap();
    let when = execution.when();
    assert!(when >= before + Duration::from_secs(3590), "{when:?}");
    assert!(
        when <= SystemTime::now() + Duration::from_secs(3610),
        "{when:?}"
    );
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Scheduled);
}

async fn a_live_key_is_not_added_twice(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let first = docket
        .add(Probed::new(probe.clone(), 0))
        .key("once")
        .await
        .unwrap();
    let second = docket
        .add(Probed::new(probe.clone(), 0))
        .key("once")
        .await
        .unwrap();
    assert_eq!(first.disposition(), Disposition::Scheduled);
    assert_eq!(second.disposition(), Disposition::AlreadyScheduled);
    assert_eq!(second.generation(), first.generation());

    run_until_finished(&docket).await;
    assert_eq!(runs(&probe).len(), 1);

    // After a terminal state the key can be reused.
    let third = docket
        .add(Probed::new(probe.clone(), 0))
        .key("once")
        .await
        .unwrap();
    assert_eq!(third.disposition(), Disposition::Scheduled);
    assert_eq!(third.generation(), first.generation() + 1);
    run_until_finished(&docket).await;
    assert_eq!(runs(&probe).len(), 2);
}

async fn replace_supersedes_the_live_copy(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let old = docket
        .add(AddNumbers::new(1, 1))
        .key("sum")
        .after(Duration::from_hours(1))
        .await
        .unwrap();
    let new = docket
        .replace(AddNumbers::new(20, 22))
        .key("sum")
        .await
        .unwrap();
    assert_eq!(new.disposition(), Disposition::Superseded);
    assert_eq!(new.generation(), old.generation() + 1);
    assert_eq!(new.state().await.unwrap(), ExecutionState::Queued);
    // Nothing is scheduled any more: the parked copy went away.
    assert_eq!(docket.snapshot().await.unwrap().scheduled.len(), 0);

    // Replacing a queued copy: only the newest runs.
    docket
        .add(Probed::new(probe.clone(), 0))
        .key("p")
        .await
        .unwrap();
    let replaced = docket
        .replace(Probed::new(probe.clone(), 0))
        .key("p")
        .await
        .unwrap();
    assert_eq!(replaced.disposition(), Disposition::Superseded);

    run_until_finished(&docket).await;
    assert_eq!(new.result().await.unwrap(), 42);
    assert_eq!(runs(&probe).len(), 1);
    // With nothing live, replace simply schedules.
    let fresh = docket
        .replace(AddNumbers::new(0, 0))
        .key("sum")
        .await
        .unwrap();
    assert_eq!(fresh.disposition(), Disposition::Scheduled);
}

async fn cancel_removes_queued_and_scheduled_tasks(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let queued = docket
        .add(Probed::new(probe.clone(), 0))
        .key("q")
        .await
        .unwrap();
    let scheduled = docket
        .add(Probed::new(probe.clone(), 0))
        .key("s")
        .after(Duration::from_millis(300))
        .await
        .unwrap();
    assert!(docket.cancel("q").await.unwrap());
    assert!(scheduled.cancel().await.unwrap());
    assert!(
        !docket.cancel("q").await.unwrap(),
        "cancelling twice finds nothing live"
    );
    assert!(!docket.cancel("never-added").await.unwrap());
    assert_eq!(queued.state().await.unwrap(), ExecutionState::Cancelled);
    assert_eq!(scheduled.state().await.unwrap(), ExecutionState::Cancelled);
    assert!(matches!(queued.result().await, Err(Error::Cancelled(key)) if key == "q"));

    run_until_finished(&docket).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    run_until_finished(&docket).await;
    assert!(
        runs(&probe).is_empty(),
        "cancelled tasks ran: {:?}",
        runs(&probe)
    );
}

async fn failures_and_panics_are_recorded(target: Target) {
    let docket = target.docket().await;
    let failing = docket
        .add(AlwaysFails::new("no luck".into()))
        .await
        .unwrap();
    let panicking = docket.add(Panics::new("kaboom".into())).await.unwrap();
    let fine = docket.add(AddNumbers::new(1, 2)).await.unwrap();
    run_until_finished(&docket).await;

    assert_eq!(failing.state().await.unwrap(), ExecutionState::Failed);
    match failing.result().await {
        Err(Error::TaskFailed { error, .. }) => {
            assert_eq!(error.message(), "no luck");
            assert!(!error.is_panic());
        }
        other => panic!("expected a task failure, got {other:?}"),
    }
    match panicking.result().await {
        Err(Error::TaskFailed { error, .. }) => {
            assert!(error.is_panic(), "{error:?}");
            assert!(error.message().contains("kaboom"), "{error}");
        }
        other => panic!("expected a panic failure, got {other:?}"),
    }
    // The panic did not take the worker down: the next task ran.
    assert_eq!(fine.result().await.unwrap(), 3);
}

async fn injected_parameters_describe_the_run(target: Target) {
    let docket = target.docket().await;
    let execution = docket.add(Inspect::new()).key("who").await.unwrap();
    let worker = test_worker(&docket)
        .name("inspector")
        .concurrency(3)
        .build()
        .unwrap();
    worker.run_until_finished().await.unwrap();
    let seen: Inspected = execution.result().await.unwrap();
    assert_eq!(
        seen,
        Inspected {
            key: "who".into(),
            attempt: 1,
            attempts: Some(4),
            worker: "inspector".into(),
            concurrency: 3,
            docket: target.name.clone(),
            function: "inspect".into(),
            generation: 1,
        }
    );
    let renamed = docket.add(RenamedTask::new()).await.unwrap();
    assert_eq!(renamed.function(), "tests.renamed");
    run_until_finished(&docket).await;
    assert_eq!(renamed.result().await.unwrap(), "renamed");
}

async fn fire_and_forget_keeps_nothing(target: Target) {
    let docket = target
        .builder()
        .execution_ttl(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let probe = target.name.clone();
    let execution = docket.add(Probed::new(probe.clone(), 0)).await.unwrap();
    let started = Instant::now();
    match execution.result().await {
        Err(Error::ResultsDisabled(key)) => assert_eq!(key, execution.key()),
        other => panic!("expected ResultsDisabled, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "result() must fail fast"
    );
    // Keys still dedupe while live.
    let again = docket
        .add(Probed::new(probe.clone(), 0))
        .key(execution.key())
        .await
        .unwrap();
    assert_eq!(again.disposition(), Disposition::AlreadyScheduled);

    run_until_finished(&docket).await;
    assert_eq!(runs(&probe).len(), 1);
    assert!(
        execution.record().await.unwrap().is_none(),
        "no record is kept"
    );
    assert!(matches!(execution.state().await, Err(Error::NotFound(_))));
    let events: Vec<Event> = tokio::time::timeout(
        Duration::from_secs(5),
        execution.subscribe().await.unwrap().collect(),
    )
    .await
    .expect("subscribing to a run with no record ends at once");
    assert!(events.is_empty(), "{events:?}");
}

/// The TTL the producer chose is the one that applies, whichever worker ends the run:
/// a fire-and-forget producer's calls leave nothing behind a worker that keeps records
/// for its own calls, retries included; a producer that keeps results gets them from a
/// worker that keeps none of its own.
async fn the_producer_s_ttl_applies_whichever_worker_ends_the_run(target: Target) {
    let forgetting = target
        .builder()
        .execution_ttl(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let keeping = target
        .builder()
        .execution_ttl(Duration::from_hours(1))
        .connect()
        .await
        .unwrap();
    // The worker's handle keeps records 15 minutes (the default)...
    let worker_handle = target.docket().await;
    let probe = format!("{}-retried", target.name);
    let forgotten = [
        forgetting
            .add(AddNumbers::new(1, 2))
            .await
            .unwrap()
            .key()
            .to_owned(),
        forgetting
            .add(AlwaysFails::new("no".into()))
            .await
            .unwrap()
            .key()
            .to_owned(),
        forgetting
            .add(FailsThrice::new(probe.clone()))
            .await
            .unwrap()
            .key()
            .to_owned(),
    ];
    run_until_finished(&worker_handle).await;
    assert_eq!(
        runs(&probe).len(),
        3,
        "the retried call ran all its attempts"
    );
    for key in &forgotten {
        assert!(
            worker_handle.get_execution(key).await.unwrap().is_none(),
            "the fire-and-forget call `{key}` left a record"
        );
    }

    // ...and a worker whose own handle keeps nothing still keeps what its producer asked.
    let forgetful_worker = target
        .builder()
        .execution_ttl(Duration::ZERO)
        .connect()
        .await
        .unwrap();
    let kept = keeping.add(AddNumbers::new(20, 22)).await.unwrap();
    run_until_finished(&forgetful_worker).await;
    assert_eq!(kept.result().await.unwrap(), 42);
    let record = kept.record().await.unwrap().expect("the record is kept");
    assert_eq!(record.state, ExecutionState::Completed);
}

async fn subscribers_see_states_and_progress(target: Target) {
    let docket = target.docket().await;
    let execution = docket.add(WithProgress::new(3, 30)).await.unwrap();
    let events = execution.subscribe().await.unwrap();
    let collector = tokio::spawn(events.collect::<Vec<Event>>());
    run_until_finished(&docket).await;
    let events = tokio::time::timeout(Duration::from_secs(5), collector)
        .await
        .expect("the subscription ends at the terminal state")
        .unwrap();

    let states: Vec<ExecutionState> = events
        .iter()
        .filter_map(|e| match e {
            Event::State { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            ExecutionState::Queued,
            ExecutionState::Running,
            ExecutionState::Completed
        ],
        "{events:?}"
    );
    let progress: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Progress(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    let last = progress.last().expect("progress events");
    assert_eq!(last.current, 3);
    assert_eq!(last.total, Some(3));
    assert_eq!(last.message.as_deref(), Some("step 3"));
    assert!(progress.iter().any(|p| p.current == 1), "{progress:?}");
    assert_eq!(execution.result().await.unwrap(), 3);
    // Progress is deleted when the run ends.
    assert_eq!(execution.progress().await.unwrap(), None);

    // Subscribing after the end yields the terminal state and stops.
    let late: Vec<Event> = execution.subscribe().await.unwrap().collect().await;
    assert!(
        matches!(
            late.as_slice(),
            [Event::State {
                state: ExecutionState::Completed,
                ..
            }]
        ),
        "{late:?}"
    );
}

async fn run_until_finished_waits_for_everything(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(Probed::new(probe.clone(), 50))
        .after(Duration::from_millis(400))
        .await
        .unwrap();
    let chain = docket
        .add(Chain::new(probe.clone(), 3))
        .key("chain")
        .await
        .unwrap();
    run_until_finished(&docket).await;
    assert_eq!(
        runs(&probe).len(),
        1,
        "the future task ran before the worker returned"
    );
    let snapshot = docket.snapshot().await.unwrap();
    assert_eq!(snapshot.total_tasks(), 0, "{snapshot:?}");
    assert_eq!(chain.state().await.unwrap(), ExecutionState::Completed);
}

async fn concurrency_is_honoured(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let calls: Vec<docket::Call> = (0..12)
        .map(|_| Probed::new(probe.clone(), 80).into())
        .collect();
    let executions = docket.add_many(calls).await.unwrap();
    assert_eq!(executions.len(), 12);
    let worker = test_worker(&docket).concurrency(4).build().unwrap();
    worker.run_until_finished().await.unwrap();
    assert_eq!(runs(&probe).len(), 12);
    assert_eq!(
        max_running(&probe),
        4,
        "exactly the concurrency runs at once"
    );
}

async fn add_many_mixes_tasks_keys_and_times(target: Target) {
    let docket = target.docket().await;
    let executions = docket
        .add_many([
            docket::Call::from(AddNumbers::new(1, 2)).key("a"),
            docket::Call::from(AddNumbers::new(3, 4)).key("a"),
            docket::Call::from(RenamedTask::new()).after(Duration::from_mins(10)),
        ])
        .await
        .unwrap();
    let dispositions: Vec<Disposition> = executions
        .iter()
        .map(docket::Execution::disposition)
        .collect();
    assert_eq!(
        dispositions,
        [
            Disposition::Scheduled,
            Disposition::AlreadyScheduled,
            Disposition::Scheduled
        ]
    );
    assert_eq!(
        executions[2].state().await.unwrap(),
        ExecutionState::Scheduled
    );
    let error = docket
        .add_many([docket::Call::from(AddNumbers::new(1, 1)).key("stream")])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("`stream`"), "{error}");
}

async fn workers_and_snapshot_show_what_is_live(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    docket
        .add(Probed::new(probe.clone(), 600))
        .key("slow")
        .await
        .unwrap();
    docket
        .add(AddNumbers::new(1, 1))
        .key("later")
        .after(Duration::from_mins(1))
        .await
        .unwrap();
    let worker = test_worker(&docket)
        .name("snapper")
        .concurrency(1)
        .build()
        .unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    eventually(Duration::from_secs(10), "the slow task to start", || {
        runs(&probe).len() == 1
    })
    .await;
    let snapshot = docket.snapshot().await.unwrap();
    assert_eq!(snapshot.running.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot.running[0].message.key, "slow");
    assert_eq!(snapshot.running[0].worker.as_deref(), Some("snapper"));
    assert_eq!(snapshot.scheduled.len(), 1);
    let workers = docket.workers().await.unwrap();
    assert_eq!(workers.len(), 1);
    assert_eq!(workers[0].name, "snapper");
    assert!(workers[0].tasks.iter().any(|t| t == "probed"));
    assert_eq!(docket.task_workers("probed").await.unwrap().len(), 1);
    assert!(
        docket
            .task_workers("no-such-task")
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        docket.clear().await.unwrap(),
        1,
        "clear removes the scheduled task"
    );
    handle.shutdown();
    running.await.unwrap().unwrap();
    // The drain let the running task finish.
    let slow = docket.get_execution("slow").await.unwrap().unwrap();
    assert_eq!(slow.state().await.unwrap(), ExecutionState::Completed);
    let after = docket.snapshot().await.unwrap();
    assert_eq!(after.total_tasks(), 0);
    assert!(
        after.workers.is_empty(),
        "a stopped worker leaves: {after:?}"
    );
    assert!(docket.task_workers("probed").await.unwrap().is_empty());
}

on_both_backends!(
    immediate_task_runs_and_returns_its_result,
    future_task_waits_for_its_time,
    after_delays_from_now,
    a_live_key_is_not_added_twice,
    replace_supersedes_the_live_copy,
    cancel_removes_queued_and_scheduled_tasks,
    failures_and_panics_are_recorded,
    injected_parameters_describe_the_run,
    fire_and_forget_keeps_nothing,
    the_producer_s_ttl_applies_whichever_worker_ends_the_run,
    subscribers_see_states_and_progress,
    run_until_finished_waits_for_everything,
    concurrency_is_honoured,
    add_many_mixes_tasks_keys_and_times,
    workers_and_snapshot_show_what_is_live,
);
