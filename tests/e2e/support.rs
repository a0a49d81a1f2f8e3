//! Test support: where a scenario runs (`memory://` or a `redis-server` of its own,
//! from the testkit, killed on drop), a unique docket name per test, and probes that
//! tasks report into.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use docket::{Docket, DocketBuilder, Worker, WorkerBuilder};
pub use docket_testkit::{RedisServer, eventually, free_port, installed_server, unique, wait_for};

/// Where a scenario runs: `memory://` or its own `redis-server`.
pub struct Target {
    pub name: String,
    pub url: String,
    pub redis: Option<RedisServer>,
}

impl Target {
    pub fn memory() -> Self {
        let name = unique("mem");
        Self {
            url: format!("memory://{name}"),
            name,
            redis: None,
        }
    }

    pub fn redis() -> Self {
        Self::redis_with(RedisServer::start())
    }

    pub fn redis_with(server: RedisServer) -> Self {
        Self {
            name: unique("redis"),
            url: server.url(),
            redis: Some(server),
        }
    }

    pub fn builder(&self) -> DocketBuilder {
        Docket::builder(self.name.clone(), self.url.clone())
    }

    pub async fn docket(&self) -> Docket {
        self.builder()
            .connect()
            .await
            .expect("connect to the docket")
    }
}

/// A worker tuned for tests: short reads, a fine scheduler and quick reconnection.
pub fn test_worker(docket: &Docket) -> WorkerBuilder {
    Worker::builder(docket.clone())
        .minimum_check_interval(Duration::from_millis(20))
        .scheduling_resolution(Duration::from_millis(20))
        .reconnection_delay(Duration::from_millis(50))
        // This binary registers automatic tasks; scenarios that want them opt in.
        .schedule_automatic_tasks(false)
}

/// Runs a test worker on `docket` until nothing is queued, scheduled or running.
pub async fn drain(docket: &Docket) {
    test_worker(docket)
        .build()
        .unwrap()
        .run_until_finished()
        .await
        .unwrap();
}

/// The record of a key that must exist.
pub async fn record_of(docket: &Docket, key: &str) -> docket::ExecutionRecord {
    docket
        .get_execution(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no execution for `{key}`"))
        .record()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no record for `{key}`"))
}

/// Asserts every execution ended COMPLETED, naming the first that did not.
pub async fn assert_all_completed<T>(executions: &[docket::Execution<T>]) {
    for execution in executions {
        assert_eq!(
            execution.state().await.unwrap(),
            docket::ExecutionState::Completed,
            "{}",
            execution.key()
        );
    }
}

/// One run of a probed task, as the task saw it.
#[derive(Debug, Clone)]
pub struct Run {
    pub key: String,
    /// The worker that ran it.
    pub worker: Option<String>,
    pub attempt: u32,
    pub redelivered: bool,
    pub started: Instant,
    pub ended: Option<Instant>,
}

#[derive(Debug, Default)]
struct Probe {
    runs: Vec<Run>,
    running: usize,
    max_running: usize,
}

static PROBES: LazyLock<Mutex<HashMap<String, Probe>>> = LazyLock::new(Mutex::default);

fn with_probe<T>(name: &str, f: impl FnOnce(&mut Probe) -> T) -> T {
    let mut probes = PROBES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(probes.entry(name.to_owned()).or_default())
}

/// Records a run's start; returns its index for [`probe_end`].
pub fn probe_start(name: &str, execution: &docket::Execution) -> usize {
    with_probe(name, |probe| {
        probe.running += 1;
        probe.max_running = probe.max_running.max(probe.running);
        probe.runs.push(Run {
            key: execution.key().to_owned(),
            worker: execution.worker().map(|worker| worker.name().to_owned()),
            attempt: execution.attempt(),
            redelivered: execution.redelivered(),
            started: Instant::now(),
            ended: None,
        });
        probe.runs.len() - 1
    })
}

pub fn probe_end(name: &str, index: usize) {
    with_probe(name, |probe| {
        probe.running -= 1;
        probe.runs[index].ended = Some(Instant::now());
    });
}

/// A run recorded in a probe that ends when dropped, however the run ends.
pub struct ProbeGuard {
    probe: String,
    index: usize,
}

impl ProbeGuard {
    pub fn start(probe: &str, execution: &docket::Execution) -> Self {
        Self {
            probe: probe.to_owned(),
            index: probe_start(probe, execution),
        }
    }
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        probe_end(&self.probe, self.index);
    }
}

pub fn runs(name: &str) -> Vec<Run> {
    with_probe(name, |probe| probe.runs.clone())
}

pub fn max_running(name: &str) -> usize {
    with_probe(name, |probe| probe.max_running)
}

/// Runs every listed scenario once on `memory://` and once on a fresh `redis-server`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        /// Every scenario of this module, by name, to run on other deployments.
        #[allow(dead_code)]
        pub(crate) fn scenarios() -> Vec<$crate::support::Scenario> {
            vec![$(
                (
                    stringify!($scenario),
                    (|target| Box::pin($scenario(target))) as $crate::support::ScenarioFn,
                ),
            )*]
        }

        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::support::Target::memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::support::Target::redis()).await;
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// A scenario as [`on_both_backends`] lists it: it takes the target it runs on.
pub type ScenarioFn = fn(Target) -> futures::future::BoxFuture<'static, ()>;
/// A scenario and its name.
pub type Scenario = (&'static str, ScenarioFn);

/// Parses a Prometheus exposition.
pub fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The sum of a counter's (or gauge's) series for the docket `docket` whose labels
/// include `labels` (counts are whole numbers carried as floats).
pub fn series_sum(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    docket: &str,
    labels: &[(&str, &str)],
) -> u64 {
    let total: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get("docket_name") == Some(docket))
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    whole(total)
}

/// A count carried as a float, as a whole number.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn whole(value: f64) -> u64 {
    value.round() as u64
}

/// [`series_sum`] over this process's own metrics.
pub fn counted(metric: &str, docket: &str, labels: &[(&str, &str)]) -> u64 {
    let scrape = parse_metrics(&docket::observability::prometheus_text());
    series_sum(&scrape, metric, docket, labels)
}
