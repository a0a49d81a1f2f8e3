//! Each metric an operator graphs, scraped with the value that what the test did gives
//! it: adds (counted by the process that adds), and a worker's lateness, schedule,
//! runs, strikes and lost connections (from its metrics port).

use std::time::{Duration, Instant};

use super::Cli;
use super::observability::{health_answers, http_get, scrape};
use crate::support::{
    RedisServer, Target, counted, free_port, series_sum, unique, wait_for, whole,
};
use crate::tasks::AppSlow;

/// What the worker's metrics say of one docket, as a test compares it.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    running: u64,
    scheduled: u64,
    strikes: u64,
    disruptions: u64,
    /// Runs observed by the punctuality histogram.
    punctual_runs: u64,
}

impl Seen {
    /// One run in progress, one call scheduled and one strike in effect, with
    /// `disruptions` and `punctual_runs` as given.
    fn steady(disruptions: u64, punctual_runs: u64) -> Self {
        Self {
            running: 1,
            scheduled: 1,
            strikes: 1,
            disruptions,
            punctual_runs,
        }
    }

    fn of(scraped: &prometheus_parse::Scrape, docket: &str) -> Self {
        let value = |metric| series_sum(scraped, metric, docket, &[]);
        Self {
            running: value("docket_tasks_running"),
            scheduled: value("docket_schedule_depth"),
            strikes: value("docket_strikes_in_effect"),
            disruptions: value("docket_redis_disruptions"),
            punctual_runs: punctuality(scraped, docket)
                .last()
                .map_or(0, |bucket| whole(bucket.count)),
        }
    }
}

/// The buckets of the docket's punctuality histogram (cumulative counts), if any.
fn punctuality(
    scraped: &prometheus_parse::Scrape,
    docket: &str,
) -> Vec<prometheus_parse::HistogramCount> {
    scraped
        .samples
        .iter()
        .filter(|s| {
            s.metric == "docket_task_punctuality" && s.labels.get("docket_name") == Some(docket)
        })
        .find_map(|s| match &s.value {
            prometheus_parse::Value::Histogram(buckets) => Some(buckets.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Asserts that the histogram's `runs` observations all lie between `earliest` and
/// `latest` seconds: none in a bucket below `earliest`, all in those from `latest` up.
fn assert_lateness_within(
    buckets: &[prometheus_parse::HistogramCount],
    earliest: f64,
    latest: f64,
    runs: u64,
) {
    println!("lateness between {earliest:.3}s and {latest:.3}s: {buckets:?}");
    for bucket in buckets {
        if bucket.less_than < earliest {
            assert_eq!(whole(bucket.count), 0, "runs on time: {buckets:?}");
        }
        if bucket.less_than >= latest {
            assert_eq!(
                whole(bucket.count),
                runs,
                "runs later than possible: {buckets:?}"
            );
        }
    }
}

/// Waits until the worker's metrics on `port` show `expected` for `docket`.
async fn scraped_until(port: u16, docket: &str, expected: Seen) -> prometheus_parse::Scrape {
    let what = format!("the metrics to show {expected:?}");
    wait_for(Duration::from_secs(20), &what, || async {
        let scraped = scrape(&http_get(port, "/metrics").await.unwrap_or_default());
        let seen = Seen::of(&scraped, docket);
        if seen == expected {
            Ok(scraped)
        } else {
            Err(seen)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_metrics_count_adds_lateness_schedule_runs_strikes_and_disruptions() {
    let mut cli = Cli {
        // What the server acknowledged survives its restart, so the run in progress
        // and the scheduled call are still there afterwards.
        target: Target::redis_with(RedisServer::builder().append_only().start()),
    };
    let name = cli.target.name.clone();
    let docket = cli.docket().await;
    let log = std::env::temp_dir().join(unique("metrics-slow"));
    let log_text = log.display().to_string();

    // Three quick calls, one that runs for a minute, and one due in an hour.
    let first_added = Instant::now();
    for _ in 0..3 {
        docket.add(AppSlow::new(log_text.clone(), 0)).await.unwrap();
    }
    docket
        .add(AppSlow::new(log_text.clone(), 60_000))
        .key("long")
        .await
        .unwrap();
    docket
        .add(AppSlow::new(log_text.clone(), 0))
        .after(Duration::from_hours(1))
        .await
        .unwrap();
    let last_added = Instant::now();
    let added = |metric| counted(metric, &name, &[("docket_task", "app_slow")]);
    assert_eq!(added("docket_tasks_added"), 5);
    assert_eq!(added("docket_tasks_added_total"), 5);

    cli.ok(&["strike", "app_clock"]).await;
    let port = free_port();
    let health = free_port();
    let spawned = Instant::now();
    let mut worker = cli.worker(&[
        "--metrics-port",
        &port.to_string(),
        "--healthcheck-port",
        &health.to_string(),
        "--reconnection-delay",
        "100ms",
    ]);

    // The minute-long run is in progress, the quick ones are done.
    let scraped = scraped_until(port, &name, Seen::steady(0, 4)).await;
    // Each run started between the worker's start and now, and was due between the
    // first add and the last: its lateness is within those bounds.
    let earliest = spawned.duration_since(last_added).as_secs_f64();
    let latest = first_added.elapsed().as_secs_f64();
    assert_lateness_within(&punctuality(&scraped, &name), earliest, latest, 4);

    // Redis goes away and comes back: one disruption, however long it lasted.
    let server = cli.target.redis.as_mut().unwrap();
    server.kill();
    scraped_until(port, &name, Seen::steady(1, 4)).await;
    server.restart();
    health_answers(health, 200, Duration::from_secs(20)).await;
    // A call added after the restart runs, and the outage still counts once. The
    // handle's first command finds its connection broken and fails; the next dials
    // again (the key makes the retry safe).
    wait_for(
        Duration::from_secs(10),
        "an add after the restart",
        || async {
            docket
                .add(AppSlow::new(log_text.clone(), 0))
                .key("after-restart")
                .await
                .map(drop)
        },
    )
    .await;
    scraped_until(port, &name, Seen::steady(1, 5)).await;
    worker.kill().await.unwrap();
    let _ = std::fs::remove_file(log);
}
