//! What a running worker shows the outside: its health port, Prometheus metrics and
//! spans exported over OTLP.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Cli, finish, sigterm, text};
use crate::support::{free_port, parse_metrics, series_sum, wait_for, whole};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_port_answers_while_the_worker_runs() {
    let cli = Cli::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut worker = cli.worker(&["--healthcheck-port", &port.to_string()]);
    let what = format!("a healthy answer on {port}");
    let answer = wait_for(Duration::from_secs(20), &what, || async {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return Err(String::new());
        };
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        // 503 "unhealthy" until the worker's first call to the docket succeeds.
        if answer.starts_with("HTTP/1.1 200") {
            Ok(answer)
        } else {
            Err(answer)
        }
    })
    .await;
    assert!(answer.contains("\"status\":\"healthy\""), "{answer}");
    assert!(
        answer.contains(&format!("\"docket\":\"{}\"", cli.target.name)),
        "{answer}"
    );
    worker.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_without_redis_and_200_when_it_returns() {
    let mut cli = Cli::new();
    let port = free_port();
    let worker = cli.worker(&[
        "--healthcheck-port",
        &port.to_string(),
        "--reconnection-delay",
        "100ms",
    ]);
    health_answers(port, 200, Duration::from_secs(20)).await;
    let ready = http_get(port, "/ready").await.unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    cli.target.redis.as_mut().unwrap().kill();
    let down = Instant::now();
    let answer = health_answers(port, 503, Duration::from_secs(5)).await;
    println!("health 503 {:?} after Redis stopped", down.elapsed());
    assert!(answer.contains("lost the connection"), "{answer}");

    cli.target.redis.as_mut().unwrap().restart();
    health_answers(port, 200, Duration::from_secs(20)).await;
    sigterm(&worker);
    let output = tokio::time::timeout(Duration::from_secs(20), worker.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = text(&output.stderr);
    assert!(logs.contains("lost the connection to the docket"), "{logs}");
    assert!(logs.contains("connection to the docket restored"), "{logs}");
}

/// Redis refusing writes turns health 503 naming the refusal; the worker logs the
/// refusal once however long it lasts, and once that it is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_a_write_refusal_and_the_worker_logs_it_once() {
    let cli = Cli::new();
    let port = free_port();
    let worker = cli.worker(&[
        "--healthcheck-port",
        &port.to_string(),
        "--reconnection-delay",
        "100ms",
    ]);
    health_answers(port, 200, Duration::from_secs(20)).await;
    let server = cli.target.redis.as_ref().unwrap();
    let min_replicas = |count: &str| {
        let _: () = ::redis::cmd("CONFIG")
            .arg("SET")
            .arg("min-replicas-to-write")
            .arg(count)
            .query(&mut server.connection())
            .unwrap();
    };
    min_replicas("1");
    let answer = health_answers(port, 503, Duration::from_secs(10)).await;
    assert!(answer.contains("NOREPLICAS"), "{answer}");
    assert!(answer.contains("min-replicas-to-write"), "{answer}");
    // The refusal lasts a while: the worker keeps trying, and keeps quiet about it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    min_replicas("0");
    health_answers(port, 200, Duration::from_secs(20)).await;
    sigterm(&worker);
    let output = tokio::time::timeout(Duration::from_secs(20), worker.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let logs = text(&output.stderr);
    let told = logs.matches("Redis refuses writes with NOREPLICAS").count();
    assert_eq!(told, 1, "one line for the whole refusal:\n{logs}");
    assert_eq!(
        logs.matches("Redis takes writes again").count(),
        1,
        "{logs}"
    );
}

/// Waits until the health port answers `code`; the whole answer.
pub(super) async fn health_answers(port: u16, code: u16, within: Duration) -> String {
    let what = format!("health to answer {code}");
    wait_for(within, &what, || async {
        match http_get(port, "/").await {
            Some(answer) if answer.split_whitespace().nth(1) == Some(&code.to_string()) => {
                Ok(answer)
            }
            other => Err(other),
        }
    })
    .await
}

/// GET `path` on a loopback port; the whole answer, or `None` when nothing listens.
pub(super) async fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.ok()?;
    Some(answer)
}

pub(super) fn scrape(answer: &str) -> prometheus_parse::Scrape {
    parse_metrics(answer.split_once("\r\n\r\n").map_or("", |(_, body)| body))
}

/// A counter or gauge of this docket, for one task when `task` is given.
fn sample(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    docket: &str,
    task: Option<&str>,
) -> u64 {
    let labels: Vec<(&str, &str)> = task.map(|t| ("docket_task", t)).into_iter().collect();
    series_sum(scrape, metric, docket, &labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_run_with_their_labels() {
    let cli = Cli::new();
    let docket = cli.docket().await;
    let name = cli.target.name.clone();
    for n in 0..12 {
        docket
            .add(docket::worker::builtin::Trace::new(format!("hello {n}")))
            .await
            .unwrap();
    }
    for n in 0..5 {
        docket
            .add(docket::worker::builtin::Fail::new(format!("boom {n}")))
            .await
            .unwrap();
    }
    for n in 0..3 {
        docket.add(crate::tasks::AppFlaky::new(n)).await.unwrap();
    }
    let port = free_port();
    let mut worker = cli.worker(&["--name", "metered", "--metrics-port", &port.to_string()]);
    let what = "the metrics to count all 23 runs completed";
    let scraped = wait_for(Duration::from_secs(20), what, || async {
        let scraped = scrape(&http_get(port, "/metrics").await.unwrap_or_default());
        let completed = sample(&scraped, "docket_tasks_completed_total", &name, None);
        if completed >= 23 {
            Ok(scraped)
        } else {
            Err(completed)
        }
    })
    .await;
    worker.kill().await.unwrap();
    let expect = |metric: &str, task: &str, value: u64| {
        assert_eq!(
            sample(&scraped, metric, &name, Some(task)),
            value,
            "{metric}{{{task}}}"
        );
    };
    expect("docket_tasks_started_total", "trace", 12);
    expect("docket_tasks_succeeded_total", "trace", 12);
    expect("docket_tasks_failed_total", "fail", 5);
    expect("docket_tasks_started_total", "app_flaky", 6);
    expect("docket_tasks_failed_total", "app_flaky", 6);
    expect("docket_tasks_retried_total", "app_flaky", 3);
    expect("docket_tasks_completed_total", "app_flaky", 6);
    // The guide's queries use the plain name.
    assert_eq!(sample(&scraped, "docket_tasks_completed", &name, None), 23);
    let started = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "docket_tasks_started_total" && s.labels.get("docket_name") == Some(&*name)
        })
        .unwrap();
    assert_eq!(started.labels.get("docket_worker"), Some("metered"));
    assert!(matches!(started.value, prometheus_parse::Value::Counter(_)));
    let durations = scraped
        .samples
        .iter()
        .find(|s| {
            s.metric == "docket_task_duration"
                && s.labels.get("docket_task") == Some("trace")
                && s.labels.get("docket_name") == Some(&*name)
        })
        .expect("a duration histogram");
    let prometheus_parse::Value::Histogram(buckets) = &durations.value else {
        panic!("{durations:?}");
    };
    assert_eq!(whole(buckets.last().unwrap().count), 12);
    assert!(
        scraped.samples.iter().any(
            |s| s.metric == "docket_queue_depth" && s.labels.get("docket_name") == Some(&*name)
        ),
        "the queue depth gauge is refreshed by heartbeats"
    );
}

/// A stand-in OTLP/HTTP collector: answers 200 to every request and keeps them.
async fn fake_collector() -> (u16, tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&chunk[..n]);
                    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&data[..end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if data.len() < end + 4 + length {
                        continue;
                    }
                    let body = data[end + 4..end + 4 + length].to_vec();
                    let _ = sender.send((head, body));
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    data.drain(..end + 4 + length);
                }
            });
        }
    });
    (port, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_exports_spans_over_otlp_when_the_endpoint_is_set() {
    let cli = Cli::new();
    cli.ok(&["tasks", "trace", "exported"]).await;
    let (port, mut received) = fake_collector().await;
    let worker = cli
        .command(&["worker", "--until-finished"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        )
        .env("OTEL_SERVICE_NAME", "docket-e2e")
        .spawn()
        .unwrap();
    let output = finish(worker, Duration::from_secs(30), &["worker"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (head, body) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the worker exported its spans before exiting")
        .unwrap();
    assert!(head.starts_with("POST /v1/traces "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("application/x-protobuf"),
        "{head}"
    );
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"docket.task.trace"), "the run's span was exported");
    assert!(has(b"docket-e2e"), "with the service name");
}
