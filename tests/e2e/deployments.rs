//! The lifecycle suite on the ways teams run Redis — a Redis Cluster of six processes
//! (three primaries, three replicas) as an ACL user, TLS, a user made with the README's
//! ACL line, a master found through Sentinels, acknowledgements that wait for a replica,
//! Redis 6.2 and Valkey — a slot moving under a busy worker, and the errors of
//! connections that cannot work.

use std::time::{Duration, Instant};

use docket::ExecutionState;

use docket_testkit::{Cluster, SentinelBed, TlsFiles};

use crate::support::{
    RedisServer, Scenario, Target, eventually, free_port, installed_server, test_worker, unique,
    wait_for,
};
use crate::tasks::AddNumbers;

/// Runs every scenario on `url`, each with a docket name of its own.
pub(crate) async fn run_suite(url: &str, scenarios: Vec<Scenario>) {
    for (name, scenario) in scenarios {
        let started = Instant::now();
        let target = Target {
            name: unique("suite"),
            url: url.to_owned(),
            redis: None,
        };
        scenario(target).await;
        println!("{name}: passed in {:?}", started.elapsed());
    }
}

/// Every lifecycle scenario passes on a six-process cluster, each as a user restricted
/// by the documented cluster ACL line (the name in braces), created on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_on_a_cluster_as_an_acl_user() {
    let cluster = Cluster::start();
    let seed = cluster.nodes[2].port();
    for (scenario_name, scenario) in crate::lifecycle::scenarios() {
        let name = unique("cluster");
        let user = format!("user-{name}");
        let line = documented_acl(true, &user, "cluster-pw", &name);
        for node in &cluster.nodes {
            run_words(&mut node.connection(), &line);
        }
        let target = Target {
            url: format!("redis+cluster://{user}:cluster-pw@127.0.0.1:{seed}/0"),
            name,
            redis: None,
        };
        scenario(target).await;
        println!("{scenario_name}: passed");
    }
}

/// A docket's slot moves to another primary while a worker runs its tasks: the
/// redirects are followed and every task completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_migration_under_a_working_worker_loses_nothing() {
    let cluster = Cluster::start();
    let name = unique("moving");
    let docket = docket::Docket::connect(name.clone(), cluster.url())
        .await
        .unwrap();
    let mut first = Vec::new();
    for n in 0..50 {
        first.push(docket.add(AddNumbers::new(n, 1)).await.unwrap());
    }
    let worker = test_worker(&docket).build().unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    for execution in &first[..5] {
        tokio::time::timeout(Duration::from_secs(20), execution.result())
            .await
            .expect("the first tasks ran")
            .unwrap();
    }

    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(format!("{{{name}}}:stream"))
        .query(&mut cluster.nodes[0].connection())
        .unwrap();
    cluster.migrate_slot(slot);

    let mut second = Vec::new();
    for n in 0..50 {
        second.push(docket.add(AddNumbers::new(n, 2)).await.unwrap());
    }
    for execution in first.iter().chain(&second) {
        tokio::time::timeout(Duration::from_secs(30), execution.result())
            .await
            .unwrap_or_else(|_| panic!("{} never completed", execution.key()))
            .unwrap_or_else(|error| panic!("{}: {error}", execution.key()));
        assert_eq!(execution.state().await.unwrap(), ExecutionState::Completed);
    }
    handle.shutdown();
    running.await.unwrap().unwrap();
}

/// PEM files for TLS tests: a certificate authority, a server certificate (X.509 v3,
/// SAN `127.0.0.1` and `localhost`), a client certificate, and a second, unrelated
/// authority. Removed when dropped.
pub struct Certificates {
    pub dir: std::path::PathBuf,
}

impl Certificates {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(unique("docket-tls"));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
        let authority = |file: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, format!("docket test {file}"));
            write(file, params.self_signed(&key).unwrap().pem());
            Issuer::new(params, key)
        };
        let issuer = authority("ca.pem");
        authority("other-ca.pem");
        for (name, names) in [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ),
            ("client", vec!["docket-client".to_owned()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let certificate = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            write(&format!("{name}.pem"), certificate.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Self { dir }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The authority and the server's certificate and key, for a testkit server.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            ca: self.dir.join("ca.pem"),
            cert: self.dir.join("server.pem"),
            key: self.dir.join("server.key"),
        }
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server with a plain port (for the test's own inspection) and a TLS port that
/// asks clients for a certificate (`--tls-auth-clients optional`, or `yes`).
fn tls_server(certificates: &Certificates, tls_port: u16, client_auth: &str) -> RedisServer {
    RedisServer::builder()
        .args([
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &certificates.path("server.pem"),
            "--tls-key-file",
            &certificates.path("server.key"),
            "--tls-ca-cert-file",
            &certificates.path("ca.pem"),
            "--tls-auth-clients",
            client_auth,
        ])
        .start()
}

/// Every lifecycle scenario passes over TLS (rustls), trusting the test's authority
/// named in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_over_tls() {
    let certificates = Certificates::generate();
    let tls_port = free_port();
    let _server = tls_server(&certificates, tls_port, "optional");
    let url = format!(
        "rediss://127.0.0.1:{tls_port}/0?tls_ca={}",
        certificates.path("ca.pem")
    );
    run_suite(&url, crate::lifecycle::scenarios()).await;
}

/// A server that requires client certificates accepts docket's when the builder names
/// them, and refuses a docket without one with one clear line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_presented_when_required() {
    let certificates = Certificates::generate();
    let tls_port = free_port();
    let _server = tls_server(&certificates, tls_port, "yes");
    let url = format!("rediss://127.0.0.1:{tls_port}/0");
    let options = docket::ConnectionOptions::default()
        .tls_ca_file(certificates.path("ca.pem"))
        .tls_client_cert_files(
            certificates.path("client.pem"),
            certificates.path("client.key"),
        );
    let docket = docket::Docket::builder(unique("mtls"), &url)
        .connections(options)
        .connect()
        .await
        .unwrap();
    let execution = docket.add(AddNumbers::new(2, 3)).await.unwrap();
    crate::support::drain(&docket).await;
    assert_eq!(execution.result().await.unwrap(), 5);

    let without = docket::Docket::builder(unique("mtls"), &url)
        .connections(docket::ConnectionOptions::default().tls_ca_file(certificates.path("ca.pem")))
        .connect()
        .await
        .expect_err("a client without a certificate is refused");
    let text = without.to_string();
    println!("without a client certificate: {text}");
    assert!(text.contains(&url), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

/// The ACL lines the README documents, read from the README itself: the standalone
/// form first, then the cluster form.
fn readme_acl_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read the README");
    let lines: Vec<String> = readme
        .lines()
        .filter(|line| line.starts_with("ACL SETUSER docket-user "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "the README documents two ACL lines: {lines:?}"
    );
    lines
}

/// The README's ACL line (`cluster` picks the second) for `user`, `password` and the
/// docket `name` in place of `docket-user`, `secure-password` and `orders`.
fn documented_acl(cluster: bool, user: &str, password: &str, name: &str) -> Vec<String> {
    let line = &readme_acl_lines()[usize::from(cluster)];
    line.split_whitespace()
        .map(|word| {
            word.replace("orders", name)
                .replace("docket-user", user)
                .replace("secure-password", password)
        })
        .collect()
}

fn run_words(connection: &mut redis::Connection, words: &[String]) {
    let mut command = redis::cmd(&words[0]);
    for word in &words[1..] {
        command.arg(word);
    }
    command.exec(connection).unwrap();
}

/// Every lifecycle scenario passes as a user restricted exactly as the guide documents:
/// each scenario's docket gets its own user, created with the documented line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_as_a_documented_acl_user() {
    let server = RedisServer::start();
    let mut admin = server.connection();
    for (scenario_name, scenario) in crate::lifecycle::scenarios() {
        let name = unique("acl");
        let user = format!("user-{name}");
        run_words(
            &mut admin,
            &documented_acl(false, &user, "secure-password", &name),
        );
        let target = Target {
            url: format!(
                "redis://{user}:secure-password@127.0.0.1:{}/0",
                server.port()
            ),
            name,
            redis: None,
        };
        scenario(target).await;
        println!("{scenario_name}: passed");
    }
}

/// The error of connecting the docket `name` to `url`, which must fail within 20 s (a
/// connection attempt may take 2 s), as one line.
pub(crate) async fn refusal(name: &str, url: &str) -> String {
    let connecting = docket::Docket::builder(name, url)
        .connections(docket::ConnectionOptions::default().connect_timeout(Duration::from_secs(2)))
        .connect();
    let error = tokio::time::timeout(Duration::from_secs(20), connecting)
        .await
        .unwrap_or_else(|_| panic!("{url}: connecting never ended"))
        .err()
        .unwrap_or_else(|| panic!("{url}: connected"));
    let text = error.to_string();
    println!("{text}");
    assert!(!text.contains('\n'), "{url}: {text}");
    text
}

/// The connection problems operators meet each give one line naming the URL, with the
/// password hidden: a wrong password, an ACL that denies the docket's keys, nothing
/// listening, and TLS mismatches either way or with an unknown authority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_problems_are_one_clear_line_naming_the_url() {
    let certificates = Certificates::generate();
    let tls_port = free_port();
    let server = tls_server(&certificates, tls_port, "optional");
    let mut admin = server.connection();
    run_words(
        &mut admin,
        &documented_acl(false, "orders-user", "orders-pw", "orders"),
    );
    let port = server.port();
    let ca = certificates.path("ca.pem");
    let other_ca = certificates.path("other-ca.pem");
    let unused = free_port();
    let cases = [
        (
            format!("redis://orders-user:not-the-password@127.0.0.1:{port}/0"),
            "orders",
            format!("redis://orders-user:***@127.0.0.1:{port}/0"),
            "authentication failed",
        ),
        (
            format!("redis://orders-user:orders-pw@127.0.0.1:{port}/0"),
            "payments",
            format!("redis://orders-user:***@127.0.0.1:{port}/0"),
            "may not use this docket's keys",
        ),
        (
            format!("redis://127.0.0.1:{unused}/0"),
            "orders",
            format!("redis://127.0.0.1:{unused}/0"),
            "nothing answers there",
        ),
        (
            format!("rediss://127.0.0.1:{port}/0?tls_ca={ca}"),
            "orders",
            format!("rediss://127.0.0.1:{port}/0"),
            "TLS",
        ),
        (
            format!("rediss://127.0.0.1:{tls_port}/0?tls_ca={other_ca}"),
            "orders",
            format!("rediss://127.0.0.1:{tls_port}/0"),
            "TLS handshake failed",
        ),
        (
            format!("redis://127.0.0.1:{tls_port}/0"),
            "orders",
            format!("redis://127.0.0.1:{tls_port}/0"),
            "then use `rediss://`",
        ),
    ];
    for (url, name, shown, expected) in cases {
        let text = refusal(name, &url).await;
        assert!(text.contains(&shown), "{url}: {text}");
        assert!(text.contains(expected), "{url}: {text}");
        assert!(
            !text.contains("not-the-password") && !text.contains("orders-pw"),
            "{text}"
        );
    }
}

/// The number of client connections the server has now.
fn clients(connection: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("normal")
        .query(connection)
        .unwrap();
    list.lines().count()
}

/// A configured pool size (the guide's `max_connections`) opens that many command
/// connections, and commands use all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_size_is_honoured() {
    let server = RedisServer::start();
    let mut admin = server.connection();
    let url = server.url();
    let before = clients(&mut admin);
    let one = docket::Docket::connect(unique("pool"), &url).await.unwrap();
    // Each handle also follows strikes on a connection of its own. (The one-off
    // connection of the server checks at connect may take a moment to be gone.)
    assert!(one.strikes_loaded(Duration::from_secs(5)).await);
    eventually(
        Duration::from_secs(5),
        "a pool of 1 and the strikes connection",
        || clients(&mut admin) - before == 2,
    )
    .await;
    let four = docket::Docket::builder(unique("pool"), &url)
        .connections(docket::ConnectionOptions::default().pool_size(4))
        .connect()
        .await
        .unwrap();
    assert!(four.strikes_loaded(Duration::from_secs(5)).await);
    eventually(
        Duration::from_secs(5),
        "pools of 1 and 4 and their strikes connections",
        || clients(&mut admin) - before == 2 + 5,
    )
    .await;
    for n in 0..20 {
        four.add(AddNumbers::new(n, n)).await.unwrap();
    }
    assert_eq!(four.snapshot().await.unwrap().total_tasks(), 20);
    drop(one);
}

/// A server of `.ci/servers/` with no persistence, on a free port.
fn installed(dir: &str, binary: &str) -> RedisServer {
    RedisServer::builder()
        .binary(installed_server(dir, binary))
        .start()
}

/// Every lifecycle scenario passes on Redis 6.2 (the oldest docket supports), and
/// docket knows which server it is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_on_redis_6_2() {
    let server = installed("redis-6.2", "redis-server");
    let docket = docket::Docket::connect(unique("old"), server.url())
        .await
        .unwrap();
    assert_eq!(docket.server().as_deref(), Some("Redis 6.2.14"));
    run_suite(&server.url(), crate::lifecycle::scenarios()).await;
}

/// Out of memory on Redis 6.2 (which wraps the refusal in a script error), producers
/// get the same `OOM` refusal and write nothing, and workers still drain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_told_apart_on_redis_6_2() {
    // `noeviction` is the default policy.
    crate::faults::out_of_memory_on(installed("redis-6.2", "redis-server")).await;
}

/// Every lifecycle scenario passes on a master found through three Sentinels, with
/// every add and every run's end acknowledged only once a replica holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_through_sentinels_with_acknowledgements_from_a_replica() {
    let bed = SentinelBed::start().await;
    let url = format!("{}?wait_replicas=1&wait_timeout=2s", bed.url_with_db(3));
    run_suite(&url, crate::lifecycle::scenarios()).await;
}

/// On a cluster, the wait for a replica goes to the primary that took the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_wait_for_a_replica_on_a_cluster() {
    let cluster = Cluster::start();
    let url = format!("{}?wait_replicas=1&wait_timeout=2s", cluster.url());
    let docket = docket::Docket::connect(unique("waited"), &url)
        .await
        .unwrap();
    let executions = futures::future::join_all((0..20).map(|i| {
        let docket = docket.clone();
        async move { docket.add(AddNumbers::new(i, 1)).await.unwrap() }
    }))
    .await;
    crate::support::drain(&docket).await;
    for (i, execution) in (0..20).zip(&executions) {
        assert_eq!(execution.result().await.unwrap(), i + 1);
    }
}

/// Every lifecycle scenario passes on Valkey through `valkey://`, recognised by its
/// `server_name`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_suite_passes_on_valkey() {
    let server = installed("valkey", "valkey-server");
    let url = format!("valkey://127.0.0.1:{}/0", server.port());
    let docket = docket::Docket::connect(unique("valkey"), &url)
        .await
        .unwrap();
    let described = docket.server().unwrap_or_default();
    assert!(described.starts_with("Valkey "), "{described}");
    run_suite(&url, crate::lifecycle::scenarios()).await;
}

/// A message deleted from the stream while still pending: Redis 6.2's `XAUTOCLAIM`
/// answers it as a nil entry and leaves it pending, 7.x drops it. Either way the
/// redelivery sweep acknowledges it and the worker goes on.
async fn a_deleted_pending_message_is_acknowledged(server: &RedisServer) {
    let name = unique("deleted");
    let docket = docket::Docket::connect(name.clone(), server.url())
        .await
        .unwrap();
    docket.add(AddNumbers::new(1, 1)).key("gone").await.unwrap();
    let mut connection = server.connection();
    let stream = format!("{name}:stream");
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("docket-workers")
        .arg("ghost")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query(&mut connection)
        .unwrap();
    let redis::Value::Array(streams) = read else {
        panic!("{read:?}")
    };
    assert_eq!(streams.len(), 1, "the ghost read the message");
    let ids: Vec<String> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query::<Vec<(String, std::collections::HashMap<String, String>)>>(&mut connection)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    redis::cmd("XDEL")
        .arg(&stream)
        .arg(&ids)
        .exec(&mut connection)
        .unwrap();
    let healthy = docket.add(AddNumbers::new(2, 2)).await.unwrap();

    let worker = test_worker(&docket)
        .redelivery_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let handle = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    let result = tokio::time::timeout(Duration::from_secs(10), healthy.result()).await;
    assert_eq!(result.expect("the healthy task ran").unwrap(), 4);
    wait_for(Duration::from_secs(10), "nothing to be pending", || {
        let pending: Vec<redis::Value> = redis::cmd("XPENDING")
            .arg(&stream)
            .arg("docket-workers")
            .query(&mut connection)
            .unwrap();
        let none = pending.first() == Some(&redis::Value::Int(0));
        std::future::ready(if none { Ok(()) } else { Err(pending) })
    })
    .await;
    handle.shutdown();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pending_message_is_acknowledged_on_redis_6_2() {
    a_deleted_pending_message_is_acknowledged(&installed("redis-6.2", "redis-server")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_pending_message_is_acknowledged_on_redis_7() {
    a_deleted_pending_message_is_acknowledged(&RedisServer::start()).await;
}
