//! User dependencies (`Depends`, `Shared`, builder values), custom behaviours and the
//! `docket::testing` helpers, on both backends (virtual time on memory://).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use docket::behaviors::{Admission, Behavior, Plan};
use docket::{Execution, ExecutionState, TaskError, testing};

use crate::support::{Target, counted, drain, on_both_backends, runs, test_worker};
use crate::tasks::{
    BacksOff, FailsThrice, Greeting, NeedsGreeting, POOL_BUILDS, POOL_TEARDOWNS, Picky, Probed,
    Ticks, UsesDependencies,
};

async fn dependencies_resolve_once_per_run_and_once_per_worker(target: Target) {
    let docket = target.docket().await;
    let calls: Vec<_> = (0..3)
        .map(|_| UsesDependencies::new(target.name.clone()))
        .collect();
    let mut executions = Vec::new();
    for call in calls {
        executions.push(docket.add(call).await.unwrap());
    }
    let builds = POOL_BUILDS.load(Ordering::SeqCst);
    let teardowns = POOL_TEARDOWNS.load(Ordering::SeqCst);
    let worker = test_worker(&docket)
        .name(format!("{}-w", target.name))
        .shared(Greeting("hello".into()))
        .build()
        .unwrap();
    worker.run_until_finished().await.unwrap();
    for execution in &executions {
        let (first, second, pool, greeting) = execution.result().await.unwrap();
        assert_eq!(first, second, "Depends<T> is resolved once per run");
        assert_eq!(pool, format!("{}-w", target.name));
        assert_eq!(greeting, "hello");
    }
    assert_eq!(runs(&format!("{}-resolutions", target.name)).len(), 3);
    // Other scenarios build pools concurrently: this worker built at least one, and
    // tore down what it built when it stopped.
    assert!(POOL_BUILDS.load(Ordering::SeqCst) > builds);
    assert!(POOL_TEARDOWNS.load(Ordering::SeqCst) > teardowns);
}

async fn a_failing_dependency_fails_the_run_naming_the_parameter(target: Target) {
    let docket = target.docket().await;
    let refused = docket
        .add(Picky::new(format!("{}-refuse", target.name)))
        .await
        .unwrap();
    let missing = docket.add(NeedsGreeting::new()).await.unwrap();
    drain(&docket).await;
    let error = refused.record().await.unwrap().unwrap().error.unwrap();
    assert!(error.is_dependency(), "{error:?}");
    assert!(error.message().contains("parameter `resolved`"), "{error}");
    assert!(error.message().contains("the resolver refused"), "{error}");
    let error = missing.record().await.unwrap().unwrap().error.unwrap();
    assert!(error.message().contains("parameter `greeting`"), "{error}");
    assert!(error.message().contains("WorkerBuilder::shared"), "{error}");
}

/// Retries once any failure whose message says "busy"; defers keys starting with
/// `later-` once; refuses keys starting with `never-` (with a reason that begins like a
/// strike's, and is counted as a refusal all the same).
struct Gatekeeper;

impl Behavior for Gatekeeper {
    async fn admit(&self, execution: &Execution) -> Admission {
        if execution.key().starts_with("never-") {
            Admission::Cancel("stricken from the list: never- keys do not run".into())
        } else if execution.key().starts_with("later-") && execution.generation() == 1 {
            Admission::Defer(Duration::from_millis(200))
        } else {
            Admission::Run
        }
    }

    async fn on_failure(&self, execution: &Execution, error: &TaskError, plan: &mut Plan) {
        if error.message().contains("attempt") && execution.attempt() == 3 {
            // Override the built-in plan: one more try, sooner.
            plan.retry_after(Duration::from_millis(10));
        }
    }
}

async fn custom_behaviours_admit_defer_cancel_and_plan(target: Target) {
    let docket = target.docket().await;
    let probe = target.name.clone();
    let refused = docket
        .add(Probed::new(probe.clone(), 0))
        .key("never-1")
        .await
        .unwrap();
    let deferred = docket
        .add(Probed::new(probe.clone(), 0))
        .key("later-1")
        .await
        .unwrap();
    let extended = docket
        .add(FailsThrice::new(format!("{probe}-thrice")))
        .key("thrice")
        .await
        .unwrap();
    let started = Instant::now();
    test_worker(&docket)
        .behavior(Gatekeeper)
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();
    assert_eq!(refused.state().await.unwrap(), ExecutionState::Cancelled);
    assert_eq!(deferred.result().await.unwrap(), "later-1");
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the deferral waited"
    );
    let ran: Vec<_> = runs(&probe).into_iter().map(|r| r.key).collect();
    assert_eq!(ran, ["later-1"], "the refused key never ran");
    let error = refused.record().await.unwrap().unwrap().error.unwrap();
    assert!(
        error.message().contains("never- keys do not run"),
        "{error}"
    );
    assert_eq!(counted("docket_tasks_dropped", &target.name, &[]), 1);
    assert_eq!(counted("docket_tasks_stricken", &target.name, &[]), 0);
    assert_eq!(
        runs(&format!("{probe}-thrice")).len(),
        4,
        "the user behaviour added a fourth attempt after the built-in plan ended"
    );
    assert_eq!(extended.record().await.unwrap().unwrap().message.attempt, 4);
}

async fn testing_assertions_list_what_is_waiting(target: Target) {
    let docket = target.docket().await;
    testing::assert_no_tasks(&docket).await;
    docket
        .add(Ticks::new("assert".into()))
        .after(Duration::from_mins(5))
        .await
        .unwrap();
    docket.add(BacksOff::new("assert".into())).await.unwrap();
    let record = testing::assert_task_scheduled::<Ticks>(&docket).await;
    assert_eq!(record.state, ExecutionState::Scheduled);
    testing::assert_call_scheduled(&docket, &BacksOff::new("assert".into())).await;
    testing::assert_task_count::<Ticks>(&docket, 1).await;
    assert_eq!(testing::count_tasks::<FailsThrice>(&docket).await, 0);
    let docket_for_panic = docket.clone();
    let failure = tokio::spawn(async move {
        testing::assert_task_scheduled::<FailsThrice>(&docket_for_panic).await;
    })
    .await
    .unwrap_err()
    .into_panic();
    let message = failure.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("no `fails_thrice` is scheduled"),
        "{message}"
    );
    assert!(
        message.contains("ticks"),
        "the panic lists what is waiting: {message}"
    );
    let docket_for_panic = docket.clone();
    let failure = tokio::spawn(async move { testing::assert_no_tasks(&docket_for_panic).await })
        .await
        .unwrap_err()
        .into_panic();
    assert!(
        failure
            .downcast_ref::<String>()
            .unwrap()
            .contains("backs_off")
    );
}

on_both_backends!(
    dependencies_resolve_once_per_run_and_once_per_worker,
    a_failing_dependency_fails_the_run_naming_the_parameter,
    custom_behaviours_admit_defer_cancel_and_plan,
    testing_assertions_list_what_is_waiting,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_time_runs_hours_of_retries_and_perpetual_runs_at_once() {
    let target = Target::memory();
    let docket = target.docket().await;
    testing::auto_advance(&docket, true).unwrap();
    let before = docket.snapshot().await.unwrap().taken;
    docket
        .add(crate::tasks::Stubborn::new(target.name.clone(), 3))
        .await
        .unwrap();
    docket
        .add(crate::tasks::SelfPaced::new(format!(
            "{}-paced",
            target.name
        )))
        .await
        .unwrap();
    docket
        .add(Ticks::new(format!("{}-ticks", target.name)))
        .key("ticks")
        .after(Duration::from_hours(6))
        .await
        .unwrap();
    let started = Instant::now();
    test_worker(&docket)
        .build()
        .unwrap()
        .run_at_most([("ticks", 3)])
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(runs(&format!("{}-ticks", target.name)).len(), 3);
    let after = docket.snapshot().await.unwrap().taken;
    let jumped = after.duration_since(before).unwrap();
    assert!(
        jumped >= Duration::from_hours(6),
        "the clock jumped {jumped:?}"
    );

    // A manual advance promotes what fell due.
    testing::auto_advance(&docket, false).unwrap();
    let later = docket
        .add(crate::tasks::AddNumbers::new(1, 2))
        .after(Duration::from_hours(1))
        .await
        .unwrap();
    testing::advance(&docket, Duration::from_hours(1)).unwrap();
    drain(&docket).await;
    assert_eq!(later.result().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dockets_have_no_virtual_clock() {
    let target = Target::redis();
    let docket = target.docket().await;
    let error = testing::advance(&docket, Duration::from_secs(1))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("only memory:// dockets have a virtual clock"),
        "{error}"
    );
}
