//! Credentials that rotate: a new ACL password, with every connection of the old one
//! killed, does not stop a worker or a producer. Each reconnection reads the password
//! anew, from a file or from a provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use docket::{ConnectionOptions, Credentials, Docket};

use super::command;
use crate::support::{RedisServer, eventually, test_worker, unique};
use crate::tasks::AddNumbers;

const USER: &str = "rotating";

/// Clients logged in as the rotating user.
fn clients_of_user(server: &RedisServer) -> usize {
    let list: String = ::redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut server.connection())
        .unwrap();
    list.lines()
        .filter(|line| line.contains(&format!(" user={USER} ")))
        .count()
}

/// Adds, retrying a few times: the first try after the cut may meet a killed
/// connection, as any producer's would.
async fn add_retrying(docket: &Docket, a: i64, b: i64) -> docket::Execution<i64> {
    let mut tries = 0;
    loop {
        match docket.add(AddNumbers::new(a, b)).await {
            Ok(execution) => return execution,
            Err(error) if tries < 5 => {
                println!("add after the rotation: {error}");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("adds never worked again: {error}"),
        }
    }
}

/// `rotate` sets the password the docket will read next; the scenario changes the
/// user's password on the server and kills its connections, and the worker and the
/// producer carry on.
async fn a_rotated_password_and_killed_connections_do_not_stop_a_worker(
    server: RedisServer,
    docket: Docket,
    rotate: impl FnOnce(&str),
) {
    let worker = Arc::new(test_worker(&docket).name("rotated").build().unwrap());
    let running = {
        let worker = Arc::clone(&worker);
        tokio::spawn(async move { worker.run_forever().await })
    };
    let first = docket.add(AddNumbers::new(1, 1)).await.unwrap();
    assert_eq!(first.result().await.unwrap(), 2);
    assert!(
        clients_of_user(&server) > 0,
        "the docket logs in as `{USER}`"
    );

    rotate("second-secret");
    command(
        &server,
        &["ACL", "SETUSER", USER, "resetpass", ">second-secret"],
    );
    command(&server, &["CLIENT", "KILL", "USER", USER]);

    let mut executions = Vec::new();
    for i in 0..10 {
        executions.push(add_retrying(&docket, i, 1).await);
    }
    for (i, execution) in (0..10).zip(&executions) {
        let sum = tokio::time::timeout(Duration::from_secs(20), execution.result())
            .await
            .expect("the worker runs calls after the rotation")
            .unwrap();
        assert_eq!(sum, i + 1);
    }
    assert!(!running.is_finished(), "the worker stayed up");
    eventually(
        Duration::from_secs(10),
        "the worker to report healthy",
        || worker.status().connected,
    )
    .await;
    assert!(clients_of_user(&server) > 0, "reconnected as `{USER}`");
    worker.shutdown_handle().shutdown();
    running.await.unwrap().unwrap();
}

fn server_with_user() -> RedisServer {
    let server = RedisServer::start();
    command(
        &server,
        &[
            "ACL",
            "SETUSER",
            USER,
            "on",
            ">first-secret",
            "~*",
            "&*",
            "+@all",
        ],
    );
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_file_is_read_again_on_every_reconnect() {
    let server = server_with_user();
    let file = server.dir().join("redis-password");
    std::fs::write(&file, "first-secret\n").unwrap();
    let url = format!(
        "redis://{USER}@127.0.0.1:{}/0?password_file={}",
        server.port(),
        file.display()
    );
    let docket = Docket::connect(unique("rotation"), &url).await.unwrap();
    a_rotated_password_and_killed_connections_do_not_stop_a_worker(server, docket, |password| {
        std::fs::write(&file, format!("{password}\n")).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_provider_is_asked_on_every_reconnect() {
    let server = server_with_user();
    let current = Arc::new(Mutex::new("first-secret".to_owned()));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let options = ConnectionOptions::default().credentials_provider({
        let (current, asked) = (Arc::clone(&current), Arc::clone(&asked));
        move || {
            asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let password = current.lock().unwrap().clone();
            async move { Ok(Credentials::new(USER, password)) }
        }
    });
    let docket = Docket::builder(unique("provided"), server.url())
        .connections(options)
        .connect()
        .await
        .unwrap();
    let before = asked.load(std::sync::atomic::Ordering::Relaxed);
    assert!(before > 0, "the provider gave the first credentials");
    a_rotated_password_and_killed_connections_do_not_stop_a_worker(server, docket, |password| {
        *current.lock().unwrap() = password.to_owned();
    })
    .await;
    assert!(
        asked.load(std::sync::atomic::Ordering::Relaxed) > before,
        "the provider was asked again after the connections were killed"
    );
}

/// A password file that cannot be read is a connection error naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_password_file_is_named() {
    let server = RedisServer::start();
    let url = format!(
        "{}?password_file=/nonexistent/docket-password",
        server.url()
    );
    let error = Docket::connect(unique("no-file"), &url).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("/nonexistent/docket-password"), "{text}");
    assert!(text.contains("password file"), "{text}");
}
