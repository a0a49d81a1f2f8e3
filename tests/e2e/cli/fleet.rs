//! An application laid out as most are: its tasks in a library crate (`fleet_tasks`),
//! added by a producer (this test) and served by worker binaries built in this suite —
//! one that names the crate with `docket::tasks!`, and one that does not and so is not
//! linked with it.

use std::time::Duration;

use docket::ExecutionState;
use docket_testkit::LogWatch;
use fleet_tasks::FleetGreet;

use super::{Cli, finish, sigterm, text, wait_for_state};

const FLEET_WORKER: &str = env!("CARGO_BIN_EXE_docket-fleet-worker");
const FLEET_UNLINKED: &str = env!("CARGO_BIN_EXE_docket-fleet-unlinked");

/// What a worker that serves only the built-in tasks says when it starts.
const ONLY_BUILT_INS: &str = "this worker serves only the built-in tasks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_help_lists_the_tasks_of_the_crates_main_names() {
    let cli = Cli::new();
    let served = cli.program(FLEET_WORKER, &["worker", "--help"]).output();
    let served = served.await.unwrap();
    assert!(served.status.success());
    let help = text(&served.stdout);
    assert!(help.contains("Tasks this worker serves:"), "{help}");
    for line in [
        "fleet_greet   fleet_tasks",
        "fleet_double  fleet_tasks",
        "trace",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }

    let unlinked = cli.program(FLEET_UNLINKED, &["worker", "--help"]).output();
    let help = text(&unlinked.await.unwrap().stdout);
    assert!(help.contains("Tasks this worker serves:"), "{help}");
    assert!(
        !help.contains("fleet_greet"),
        "not linked, not served: {help}"
    );
    assert!(help.contains("docket::tasks!"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_wait_for_the_worker_binary_that_links_the_tasks_crate() {
    let cli = Cli::new();
    let docket = cli.docket().await;

    // The worker binary as the README used to write it: the tasks crate is a dependency
    // it never uses, so it serves only the built-in tasks, and says so.
    let mut unlinked = cli
        .program(FLEET_UNLINKED, &["worker", "--name", "unlinked"])
        .spawn()
        .unwrap();
    let unlinked_log = LogWatch::new(unlinked.stderr.take().unwrap());
    unlinked_log
        .wait_for_line(Duration::from_secs(20), ONLY_BUILT_INS)
        .await;

    let mut keys = Vec::new();
    for n in 0..20 {
        let key = format!("greet-{n}");
        docket
            .add(FleetGreet::new(format!("guest {n}")))
            .key(&key)
            .await
            .unwrap();
        keys.push(key);
    }
    unlinked_log
        .wait_for_line(Duration::from_secs(20), "does not serve `fleet_greet`")
        .await;
    for key in &keys {
        wait_for_state(&docket, key, ExecutionState::Scheduled).await;
    }

    let mut linked = cli
        .program(FLEET_WORKER, &["worker", "--name", "linked"])
        .spawn()
        .unwrap();
    let linked_log = LogWatch::new(linked.stderr.take().unwrap());
    for (n, key) in keys.iter().enumerate() {
        let execution = docket.get_execution(key).await.unwrap().unwrap();
        let greeting: String = execution
            .typed::<String>()
            .result_timeout(Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(greeting, format!("hello guest {n} from linked"));
    }
    assert_eq!(
        docket::testing::count_tasks::<FleetGreet>(&docket).await,
        0,
        "nothing of fleet_greet is left queued or scheduled"
    );

    for worker in [&unlinked, &linked] {
        sigterm(worker);
    }
    let unlinked = finish(unlinked, Duration::from_secs(20), &["unlinked"]).await;
    let linked = finish(linked, Duration::from_secs(20), &["linked"]).await;
    let (unlinked_logs, linked_logs) = (unlinked_log.text().await, linked_log.text().await);
    assert!(unlinked.status.success(), "{unlinked_logs}");
    assert!(linked.status.success(), "{linked_logs}");
    assert!(!unlinked_logs.contains("task started"), "{unlinked_logs}");
    assert!(!linked_logs.contains(ONLY_BUILT_INS), "{linked_logs}");
}
