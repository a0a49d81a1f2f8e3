//! Redis refusing writes is weather: while it lasts, a producer's add fails naming the
//! refusal and writes nothing, and a worker stays up, backs off, and says why on its
//! status; when it clears, both go on by themselves and every call runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docket::{Docket, Worker, WriteRefusal};

use super::command;
use crate::support::{RedisServer, eventually, test_worker, unique};
use crate::tasks::AddNumbers;

/// Calls the server refused, over all commands (`INFO commandstats`) but `XACK`: every
/// worker script starts with an acknowledgement of no message that tells it whether
/// Redis is out of memory, and is refused harmlessly under any refusal, however often
/// the script then succeeds (reading, or writing nothing).
fn rejected_calls(server: &RedisServer) -> u32 {
    server
        .info("commandstats")
        .into_iter()
        .filter(|(name, _)| name != "cmdstat_xack")
        .filter_map(|(_, stats)| {
            stats
                .split(',')
                .find_map(|field| field.strip_prefix("rejected_calls="))
                .and_then(|count| count.parse::<u32>().ok())
        })
        .sum()
}

/// What brings a refusal about or clears it, on the server the docket's URL names.
type Change = Box<dyn Fn(&RedisServer)>;

/// How a refusal is brought about and cleared on a running server.
struct Weather {
    refusal: WriteRefusal,
    /// The server the docket's URL names (`refuse` and `clear` act on it).
    server: RedisServer,
    refuse: Change,
    clear: Change,
}

/// Under `weather`: the add is refused with its name and writes nothing; the worker
/// stays up, reports the refusal, and does not spin; once it clears, everything runs.
async fn refused_then_resumed(weather: Weather) {
    let Weather {
        refusal,
        server,
        refuse,
        clear,
    } = weather;
    let name = unique("refused");
    let docket = Docket::connect(name.clone(), server.url()).await.unwrap();
    let before = docket.add(AddNumbers::new(1, 2)).await.unwrap();
    let worker = Arc::new(test_worker(&docket).name("weathered").build().unwrap());
    let running = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move { worker.run_forever().await })
    };
    assert_eq!(before.result().await.unwrap(), 3);

    refuse(&server);
    let error = docket
        .add(AddNumbers::new(2, 2))
        .key("refused-call")
        .await
        .unwrap_err();
    println!("{}: {error}", refusal.code());
    match &error {
        docket::Error::WriteRefused { refusal: seen, .. } => assert_eq!(*seen, refusal),
        other => panic!("expected a {} refusal, got {other:?}", refusal.code()),
    }
    assert!(error.to_string().contains(refusal.code()), "{error}");
    assert!(
        docket
            .get_execution("refused-call")
            .await
            .unwrap()
            .is_none(),
        "the refused call wrote nothing"
    );

    eventually(
        Duration::from_secs(10),
        "the worker to report the refusal",
        || worker.status().refused == Some(refusal),
    )
    .await;
    let status = worker.status();
    assert!(status.running && !status.connected, "{status:?}");
    // Backing off, not spinning: a few refused calls a second at most.
    let (calls, since) = (rejected_calls(&server), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rate = f64::from(rejected_calls(&server) - calls) / since.elapsed().as_secs_f64();
    println!("{} refused calls a second while it lasted", rate.round());

    assert!(rate < 20.0, "the worker retried {rate:.0} times a second");
    assert!(!running.is_finished(), "the worker stayed up");

    clear(&server);
    let mut executions = Vec::new();
    for i in 0..20 {
        let execution = docket.add(AddNumbers::new(i, i)).await;
        executions.push(execution.expect("adds work again once the refusal clears"));
    }
    for (i, execution) in (0..20).zip(&executions) {
        let sum = tokio::time::timeout(Duration::from_secs(20), execution.result())
            .await
            .expect("the worker resumed by itself")
            .unwrap();
        assert_eq!(sum, 2 * i);
    }
    eventually(
        Duration::from_secs(10),
        "the worker to report healthy again",
        || {
            let status = worker.status();
            status.connected && status.refused.is_none()
        },
    )
    .await;
    worker.shutdown_handle().shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noreplicas_refuses_adds_until_replicas_return() {
    refused_then_resumed(Weather {
        refusal: WriteRefusal::NotEnoughReplicas,
        server: RedisServer::start(),
        refuse: Box::new(|server| {
            command(server, &["CONFIG", "SET", "min-replicas-to-write", "1"]);
        }),
        clear: Box::new(|server| {
            command(server, &["CONFIG", "SET", "min-replicas-to-write", "0"]);
        }),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misconf_refuses_adds_until_a_save_succeeds() {
    let server = RedisServer::builder()
        .args(["--enable-protected-configs", "yes"])
        .start();
    refused_then_resumed(Weather {
        refusal: WriteRefusal::PersistenceFailing,
        server,
        // A background save into a directory nothing can be written to fails.
        refuse: Box::new(|server| {
            command(server, &["CONFIG", "SET", "save", "3600 1"]);
            command(server, &["CONFIG", "SET", "dir", "/proc"]);
            command(server, &["BGSAVE"]);
            let what = "the background save to fail";
            let deadline = Instant::now() + Duration::from_secs(10);
            while server.info("persistence")["rdb_last_bgsave_status"] != "err" {
                assert!(Instant::now() < deadline, "waited too long for {what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }),
        clear: Box::new(|server| {
            let dir = server.dir().to_str().unwrap().to_owned();
            command(server, &["CONFIG", "SET", "dir", &dir]);
            command(server, &["BGSAVE"]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while server.info("persistence")["rdb_last_bgsave_status"] != "ok" {
                assert!(Instant::now() < deadline, "the save never succeeded");
                std::thread::sleep(Duration::from_millis(20));
            }
        }),
    })
    .await;
}

/// A server demoted under a running docket (made a replica of another) refuses with
/// READONLY until it is promoted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_refuses_adds_on_a_demoted_server_until_it_is_promoted() {
    let master = RedisServer::start();
    let port = master.port().to_string();
    refused_then_resumed(Weather {
        refusal: WriteRefusal::ReadOnlyReplica,
        server: RedisServer::start(),
        refuse: Box::new(move |server| {
            command(server, &["REPLICAOF", "127.0.0.1", &port]);
            wait_until_synced(server);
        }),
        clear: Box::new(|server| command(server, &["REPLICAOF", "NO", "ONE"])),
    })
    .await;
    drop(master);
}

/// Waits until a replica's link to its master is up.
fn wait_until_synced(replica: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.info("replication")["master_link_status"] != "up" {
        assert!(Instant::now() < deadline, "the replica never synced");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A docket reached through a replica from the start: connecting works (the refusal is
/// weather), a worker waits it out, and the first add after promotion runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docket_can_start_on_a_replica_and_run_once_it_is_promoted() {
    let master = RedisServer::start();
    let replica = RedisServer::start();
    command(
        &replica,
        &["REPLICAOF", "127.0.0.1", &master.port().to_string()],
    );
    wait_until_synced(&replica);
    let docket = Docket::connect(unique("replica"), replica.url())
        .await
        .expect("connecting to a replica works");
    let error = docket.add(AddNumbers::new(1, 1)).await.unwrap_err();
    assert!(
        matches!(
            error,
            docket::Error::WriteRefused {
                refusal: WriteRefusal::ReadOnlyReplica,
                ..
            }
        ),
        "{error:?}"
    );
    let worker: Arc<Worker> = Arc::new(test_worker(&docket).build().unwrap());
    let running = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move { worker.run_forever().await })
    };
    eventually(
        Duration::from_secs(10),
        "the worker to report READONLY",
        || worker.status().refused == Some(WriteRefusal::ReadOnlyReplica),
    )
    .await;
    command(&replica, &["REPLICAOF", "NO", "ONE"]);
    let execution = docket.add(AddNumbers::new(20, 22)).await.unwrap();
    let sum = tokio::time::timeout(Duration::from_secs(20), execution.result())
        .await
        .expect("the worker resumed")
        .unwrap();
    assert_eq!(sum, 42);
    worker.shutdown_handle().shutdown();
    running.await.unwrap().unwrap();
}
