//! `docket dashboard`: the dashboard from the command line, on the docket's Redis.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Cli, finish, sigterm, text};
use crate::support::{free_port, wait_for};

/// A whole HTTP/1.1 exchange on a fresh connection that the server closes after.
async fn exchange(port: u16, request: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer)
}

async fn get(port: u16, path: &str) -> Option<String> {
    exchange(
        port,
        &format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"),
    )
    .await
}

async fn post(port: u16, path: &str, form: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n{auth}\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await
    .expect("an answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_command_serves_the_docket_acts_with_its_token_and_stops_on_sigterm() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let parked = docket
        .add(docket::worker::builtin::Sleep::new(1.0))
        .key("nap-<1>")
        .after(Duration::from_hours(1))
        .await
        .unwrap();
    let port = free_port();
    let dashboard = cli
        .command(&["dashboard", "--port", &port.to_string()])
        .env("DOCKET_DASHBOARD_TOKEN", "tok-123")
        .spawn()
        .expect("start the dashboard");
    let overview = wait_for(
        Duration::from_secs(20),
        "the dashboard's overview",
        || async {
            match get(port, "/").await {
                Some(answer) if answer.starts_with("HTTP/1.1 200") => Ok(answer),
                other => Err(other.unwrap_or_default()),
            }
        },
    )
    .await;
    assert!(overview.contains(&cli.target.name), "{overview}");
    assert!(
        overview.to_lowercase().contains("content-security-policy"),
        "{overview}"
    );
    let scheduled = get(port, "/tasks?list=scheduled").await.unwrap();
    assert!(scheduled.contains("nap-&lt;1&gt;"), "{scheduled}");

    let refused = post(port, "/actions/cancel", "key=nap-%3C1%3E", None).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert_eq!(
        parked.state().await.unwrap(),
        docket::ExecutionState::Scheduled
    );
    let cancelled = post(port, "/actions/cancel", "key=nap-%3C1%3E", Some("tok-123")).await;
    assert!(cancelled.starts_with("HTTP/1.1 303"), "{cancelled}");
    assert_eq!(
        parked.state().await.unwrap(),
        docket::ExecutionState::Cancelled
    );

    sigterm(&dashboard);
    let output = finish(dashboard, Duration::from_secs(20), &["dashboard"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let logs = text(&output.stderr);
    assert!(
        logs.contains(&format!("http://127.0.0.1:{port}/")),
        "binds loopback: {logs}"
    );
    assert!(
        logs.contains("action=\"cancel\"") || logs.contains("action=cancel"),
        "{logs}"
    );
    assert!(
        logs.contains("count=1"),
        "one audit line names how many: {logs}"
    );
}

#[tokio::test]
async fn the_dashboard_command_refuses_memory_and_a_bad_address_by_name() {
    let cli = Cli::new();
    let output = cli.run(&["--url", "memory://nope", "dashboard"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("memory://nope"),
        "{}",
        text(&output.stderr)
    );
    let output = cli.run(&["dashboard", "--bind", "not-an-address"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("not-an-address"),
        "{}",
        text(&output.stderr)
    );
}
