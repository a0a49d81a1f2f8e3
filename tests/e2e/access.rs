//! The ways a URL reaches a server besides a plain port: a password alone, a Unix
//! socket (its database and password in the query), a cluster that speaks only TLS,
//! and the `valkeys://` form of TLS.

use docket::{Docket, ExecutionState};
use docket_testkit::Cluster;

use crate::deployments::{Certificates, refusal, run_suite};
use crate::support::{RedisServer, drain, unique};
use crate::tasks::AddNumbers;

/// Adds a task on `url`, runs it with a worker, and reads its result and state back.
async fn round_trip(url: &str, name: &str) {
    let docket = Docket::connect(name.to_owned(), url)
        .await
        .unwrap_or_else(|error| panic!("{url}: {error}"));
    let execution = docket.add(AddNumbers::new(20, 22)).await.unwrap();
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Queued);
    assert_eq!(docket.snapshot().await.unwrap().total_tasks(), 1);
    drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 42);
    assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
}

/// A server with only `requirepass` is reached as `redis://:PASSWORD@host`; a wrong
/// password, or none, is refused by an error naming the URL with the password hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_only_server_runs_tasks_and_refuses_a_wrong_password() {
    let server = RedisServer::builder().password("secret").start();
    let port = server.port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0");
    assert_eq!(server.url(), url);
    round_trip(&url, &unique("password")).await;

    let text = refusal(
        &unique("refused"),
        &format!("redis://:not-the-secret@127.0.0.1:{port}/0"),
    )
    .await;
    assert!(
        text.contains(&format!("`redis://:***@127.0.0.1:{port}/0`")),
        "{text}"
    );
    assert!(text.contains("authentication failed"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");

    let text = refusal(&unique("refused"), &format!("redis://127.0.0.1:{port}/0")).await;
    assert!(
        text.contains(&format!("`redis://127.0.0.1:{port}/0`")),
        "{text}"
    );
    assert!(text.contains("the server needs a password"), "{text}");
}

/// A server listening only on a Unix socket is reached as `unix:///path`, the database
/// and the password riding in the query: adds, a worker's run and `result()` all go
/// through the socket, into the database the URL names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_url_adds_runs_and_reads_results_in_its_database() {
    let server = RedisServer::builder()
        .unix_socket()
        .password("socket-secret")
        .start();
    let socket = server.socket().unwrap().display().to_string();
    let name = unique("unix");
    round_trip(&format!("unix://{socket}?db=2&pass=socket-secret"), &name).await;

    let mut admin = server.connection();
    let keys_in = |admin: &mut redis::Connection, db: u8| -> Vec<String> {
        redis::cmd("SELECT").arg(db).exec(admin).unwrap();
        redis::cmd("KEYS")
            .arg(format!("{name}*"))
            .query(admin)
            .unwrap()
    };
    assert!(
        !keys_in(&mut admin, 2).is_empty(),
        "the docket lives in db 2"
    );
    assert_eq!(keys_in(&mut admin, 0), Vec::<String>::new());

    let text = refusal(
        &unique("refused"),
        &format!("unix://{socket}?db=2&pass=wrong-secret"),
    )
    .await;
    assert!(
        text.contains(&format!("`unix://{socket}?db=2&pass=***`")),
        "{text}"
    );
    assert!(!text.contains("wrong-secret"), "{text}");
}

/// Every lifecycle scenario passes on a six-node cluster that speaks only TLS — to
/// clients, between primaries and replicas, and on the cluster bus — reached as
/// `rediss+cluster://` trusting the test's authority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_on_a_cluster_that_speaks_only_tls() {
    let certificates = Certificates::generate();
    let cluster = Cluster::start_with_tls(&certificates.tls_files());
    let url = format!("{}?tls_ca={}", cluster.url(), certificates.path("ca.pem"));
    assert!(url.starts_with("rediss+cluster://"), "{url}");
    run_suite(&url, crate::lifecycle::scenarios()).await;

    // Nothing answers in the clear.
    let seed = cluster.nodes[2].port();
    let text = refusal(
        &unique("refused"),
        &format!("redis+cluster://127.0.0.1:{seed}/0"),
    )
    .await;
    assert!(text.contains(&format!("127.0.0.1:{seed}")), "{text}");
}

/// A `valkeys://` URL speaks TLS, trusting the authority its `tls_ca` names: a task
/// makes the round trip, and without `tls_ca` the handshake is refused. (The server is
/// a TLS-only `redis-server`: the Valkey build in `.ci/servers/` has no TLS.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkeys_url_speaks_tls_trusting_its_tls_ca() {
    let certificates = Certificates::generate();
    let server = RedisServer::builder().tls(certificates.tls_files()).start();
    let address = server.address();
    let ca = certificates.path("ca.pem");
    round_trip(
        &format!("valkeys://{address}/0?tls_ca={ca}"),
        &unique("valkeys"),
    )
    .await;

    let text = refusal(&unique("refused"), &format!("valkeys://{address}/0")).await;
    assert!(text.contains("TLS handshake failed"), "{text}");
}
