//! docket's metrics, kept in one process-wide registry and written in the
//! Prometheus text format (0.0.4).
//!
//! Counters are exposed as `name_total`, and also under their plain name as untyped
//! series, so that both the Prometheus convention and the production guide's queries
//! (`rate(docket_tasks_completed[5m])`) work. Labels are `docket_name`, `docket_worker`
//! and `docket_task` — never a key, so cardinality stays bounded by tasks and workers.
//! (A hand-written encoder rather than `prometheus-client`: its `OpenMetrics` encoding
//! cannot carry the guide's unsuffixed counter names next to the `_total` ones.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

/// What a family measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric docket reports: name, kind, help.
const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "docket_tasks_added",
        Kind::Counter,
        "Calls added (add) and written to the docket",
    ),
    (
        "docket_tasks_replaced",
        Kind::Counter,
        "Calls written by replace",
    ),
    (
        "docket_tasks_scheduled",
        Kind::Counter,
        "Calls written by add or replace",
    ),
    (
        "docket_tasks_cancelled",
        Kind::Counter,
        "Calls or runs cancelled",
    ),
    (
        "docket_tasks_stricken",
        Kind::Counter,
        "Calls or runs blocked by strikes (where=docket|worker)",
    ),
    (
        "docket_tasks_superseded",
        Kind::Counter,
        "Calls superseded by replace, or runs whose end was fenced by a newer call",
    ),
    ("docket_tasks_started", Kind::Counter, "Runs started"),
    (
        "docket_tasks_redelivered",
        Kind::Counter,
        "Runs started from a message taken over from a worker that stopped",
    ),
    (
        "docket_tasks_succeeded",
        Kind::Counter,
        "Runs that completed successfully",
    ),
    (
        "docket_tasks_failed",
        Kind::Counter,
        "Runs that failed (error, panic, timeout, dependency)",
    ),
    (
        "docket_tasks_retried",
        Kind::Counter,
        "Retries scheduled after a run",
    ),
    (
        "docket_tasks_perpetuated",
        Kind::Counter,
        "Next runs scheduled by perpetual and cron tasks",
    ),
    (
        "docket_tasks_completed",
        Kind::Counter,
        "Runs that ended, whatever the outcome",
    ),
    (
        "docket_tasks_dropped",
        Kind::Counter,
        "Runs refused by admission control (cooldown, rate limit)",
    ),
    (
        "docket_tasks_parked",
        Kind::Counter,
        "Runs parked to wait for a concurrency slot, or deferred by a rate limit",
    ),
    (
        "docket_tasks_handed_back",
        Kind::Counter,
        "Calls a worker handed back because it does not serve their task",
    ),
    (
        "docket_tasks_unserved",
        Kind::Counter,
        "Calls dead-lettered after no worker served their task for the grace period",
    ),
    (
        "docket_redis_disruptions",
        Kind::Counter,
        "Times a worker lost its connection to the docket",
    ),
    (
        "docket_tasks_running",
        Kind::Gauge,
        "Runs in progress on a worker",
    ),
    (
        "docket_queue_depth",
        Kind::Gauge,
        "Calls due and waiting for a worker",
    ),
    (
        "docket_schedule_depth",
        Kind::Gauge,
        "Calls scheduled for later (or waiting for a slot)",
    ),
    ("docket_strikes_in_effect", Kind::Gauge, "Strikes in effect"),
    (
        "docket_task_duration",
        Kind::Histogram,
        "How long runs took, in seconds",
    ),
    (
        "docket_task_punctuality",
        Kind::Histogram,
        "How late runs started after they were due, in seconds",
    ),
];

/// Every series name a scrape can show: each family's own name, counters also as
/// `_total`, histograms as `_bucket`, `_sum` and `_count`.
#[cfg(test)]
pub(crate) fn exported_names() -> impl Iterator<Item = String> {
    FAMILIES.iter().flat_map(|&(name, kind, _)| {
        let suffixes: &[&str] = match kind {
            Kind::Counter => &["", "_total"],
            Kind::Gauge => &[""],
            Kind::Histogram => &["", "_bucket", "_sum", "_count"],
        };
        suffixes.iter().map(move |suffix| format!("{name}{suffix}"))
    })
}

/// Bucket bounds in seconds, from 1 ms to 10 minutes: task durations and lateness.
const BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0,
];

/// The labels of a series, in order: name and value.
pub(crate) type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
enum Value {
    Number(f64),
    Histogram {
        counts: [u64; BUCKETS.len()],
        sum: f64,
        count: u64,
    },
}

#[derive(Debug, Default)]
struct Registry {
    series: BTreeMap<&'static str, BTreeMap<Labels, Value>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn with_series(name: &'static str, labels: Labels, f: impl FnOnce(&mut Value)) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let family = registry.series.entry(name).or_default();
    f(family.entry(labels).or_insert_with(|| new_value(name)));
}

/// A new series of the family `name`, at zero.
fn new_value(name: &str) -> Value {
    if kind(name) == Kind::Histogram {
        Value::Histogram {
            counts: [0; BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    } else {
        Value::Number(0.0)
    }
}

fn kind(name: &str) -> Kind {
    FAMILIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or(Kind::Gauge, |(_, kind, _)| *kind)
}

/// The labels of a series: docket, then worker and task when they apply.
pub(crate) fn labels(docket: &str, worker: Option<&str>, task: Option<&str>) -> Labels {
    let mut labels = vec![("docket_name", docket.to_owned())];
    if let Some(worker) = worker {
        labels.push(("docket_worker", worker.to_owned()));
    }
    if let Some(task) = task {
        labels.push(("docket_task", task.to_owned()));
    }
    labels
}

/// One change to a series, for [`apply`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change {
    /// Adds to a counter.
    Count(u64),
    /// Adds (maybe a negative amount) to a gauge.
    Add(f64),
    /// Records one observation in a histogram.
    Observe(Duration),
}

/// Applies several changes to series with the same labels under one lock (a run's
/// start or end touches several).
pub(crate) fn apply(labels: &Labels, changes: &[(&'static str, Change)]) {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    for &(name, change) in changes {
        let family = registry.series.entry(name).or_default();
        // The labels are cloned only for a new series.
        if let Some(value) = family.get_mut(labels) {
            change_value(value, change);
        } else {
            let mut value = new_value(name);
            change_value(&mut value, change);
            family.insert(labels.clone(), value);
        }
    }
}

fn change_value(value: &mut Value, change: Change) {
    match (value, change) {
        #[allow(clippy::cast_precision_loss)]
        (Value::Number(n), Change::Count(by)) => *n += by as f64,
        (Value::Number(n), Change::Add(by)) => *n += by,
        (Value::Histogram { counts, sum, count }, Change::Observe(duration)) => {
            let seconds = duration.as_secs_f64();
            for (bound, bucket) in BUCKETS.iter().zip(counts.iter_mut()) {
                if seconds <= *bound {
                    *bucket += 1;
                }
            }
            *sum += seconds;
            *count += 1;
        }
        _ => {}
    }
}

/// Adds `by` to a counter.
pub(crate) fn count(name: &'static str, labels: Labels, by: u64) {
    debug_assert_eq!(kind(name), Kind::Counter, "{name}");
    with_series(name, labels, |value| change_value(value, Change::Count(by)));
}

/// Sets a gauge.
pub(crate) fn set(name: &'static str, labels: Labels, to: f64) {
    with_series(name, labels, |value| *value = Value::Number(to));
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn label_text(labels: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    if let Some((name, value)) = extra {
        parts.push(format!("{name}=\"{value}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Every metric of this process in the Prometheus text format (0.0.4).
///
/// Serve it at `/metrics` (the `--metrics-port` of `docket worker` does) or from your
/// own HTTP server:
///
/// ```
/// let text = docket::observability::prometheus_text();
/// assert!(text.is_empty() || text.starts_with("# HELP"));
/// ```
pub fn prometheus_text() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        let Some(series) = registry.series.get(name).filter(|s| !s.is_empty()) else {
            continue;
        };
        match kind {
            Kind::Counter => {
                let _ = writeln!(
                    out,
                    "# HELP {name}_total {help}\n# TYPE {name}_total counter"
                );
                for (labels, value) in series {
                    if let Value::Number(n) = value {
                        let _ = writeln!(out, "{name}_total{} {n}", label_text(labels, None));
                    }
                }
                // The production guide's queries use the plain name.
                let _ = writeln!(
                    out,
                    "# HELP {name} {help} (same as {name}_total)\n# TYPE {name} untyped"
                );
                for (labels, value) in series {
                    if let Value::Number(n) = value {
                        let _ = writeln!(out, "{name}{} {n}", label_text(labels, None));
                    }
                }
            }
            Kind::Gauge => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
                for (labels, value) in series {
                    if let Value::Number(n) = value {
                        let _ = writeln!(out, "{name}{} {n}", label_text(labels, None));
                    }
                }
            }
            Kind::Histogram => {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                for (labels, value) in series {
                    if let Value::Histogram { counts, sum, count } = value {
                        for (bound, bucket) in BUCKETS.iter().zip(counts) {
                            let le = Some(("le", bound.to_string()));
                            let _ =
                                writeln!(out, "{name}_bucket{} {bucket}", label_text(labels, le));
                        }
                        let inf = Some(("le", "+Inf".to_owned()));
                        let _ = writeln!(out, "{name}_bucket{} {count}", label_text(labels, inf));
                        let _ = writeln!(out, "{name}_sum{} {sum}", label_text(labels, None));
                        let _ = writeln!(out, "{name}_count{} {count}", label_text(labels, None));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the shipped Grafana dashboard (and the guide's queries) name exists.
    #[test]
    fn the_dashboard_names_only_real_metrics() {
        let dashboard = include_str!("../../../docs/grafana-dashboard.json");
        let mut named = 0;
        for (at, _) in dashboard.match_indices("docket_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if matches!(
                name.as_str(),
                "docket_name" | "docket_worker" | "docket_task" | "docket_"
            ) {
                continue;
            }
            assert!(
                exported_names().any(|exported| exported == name),
                "the dashboard names `{name}`, which docket does not report"
            );
            named += 1;
        }
        assert!(named >= 8, "{named}");
        // Every worker reports the same docket-wide gauges: a sum over workers would
        // count them once per worker.
        for gauge in [
            "docket_queue_depth",
            "docket_schedule_depth",
            "docket_strikes_in_effect",
        ] {
            for (at, _) in dashboard.match_indices(&format!("{gauge}{{")) {
                let expression = &dashboard[dashboard[..at].rfind('"').unwrap_or(0)..at];
                assert!(
                    expression.contains("max"),
                    "the dashboard adds up `{gauge}` over workers: {expression}"
                );
            }
        }
    }

    #[test]
    fn counters_gauges_and_histograms_render() {
        let task = || labels("metrics-unit", Some("w\"1"), Some("t"));
        count("docket_tasks_started", task(), 2);
        count("docket_tasks_started", task(), 1);
        set(
            "docket_queue_depth",
            labels("metrics-unit", None, None),
            7.0,
        );
        apply(
            &task(),
            &[(
                "docket_task_duration",
                Change::Observe(Duration::from_millis(30)),
            )],
        );
        let text = prometheus_text();
        let started = "docket_tasks_started_total{docket_name=\"metrics-unit\",docket_worker=\"w\\\"1\",docket_task=\"t\"} 3";
        assert!(text.contains(started), "{text}");
        assert!(
            text.contains("# TYPE docket_tasks_started untyped"),
            "{text}"
        );
        assert!(
            text.contains("docket_queue_depth{docket_name=\"metrics-unit\"} 7"),
            "{text}"
        );
        assert!(text.contains("le=\"0.025\"} 0"), "{text}");
        assert!(text.contains("le=\"0.05\"} 1"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 1"), "{text}");
    }
}
