//! Observability endpoints a worker serves: health on `--healthcheck-port` and
//! Prometheus text on `--metrics-port`.

mod http;

pub(crate) use http::{Response, serve};

use crate::worker::WorkerStatus;

/// The health check's answer: 200 while the worker runs and is not draining, 503 with
/// the reason otherwise.
pub(crate) fn health(docket: &str, worker: &str, status: WorkerStatus) -> Response {
    let (code, state) = match (status.running, status.draining) {
        (true, false) => (200, "healthy"),
        (true, true) => (503, "draining"),
        (false, _) => (503, "not running"),
    };
    let body = serde_json::json!({
        "status": state,
        "docket": docket,
        "worker": worker,
        "tasks_running": status.tasks_running,
        "disruptions": status.disruptions,
    });
    Response::json(code, &body)
}

/// The worker's own gauges and counters in the Prometheus text format.
pub(crate) fn metrics(
    docket: &str,
    worker: &str,
    status: WorkerStatus,
    strikes: usize,
) -> Response {
    let labels = format!(
        "docket_name=\"{}\",docket_worker=\"{}\"",
        escape(docket),
        escape(worker)
    );
    let body = format!(
        "# HELP docket_tasks_running Tasks being run by this worker.\n\
         # TYPE docket_tasks_running gauge\n\
         docket_tasks_running{{{labels}}} {}\n\
         # HELP docket_redis_disruptions Times this worker lost its connection to Redis.\n\
         # TYPE docket_redis_disruptions counter\n\
         docket_redis_disruptions_total{{{labels}}} {}\n\
         # HELP docket_strikes_in_effect Strikes in effect in the docket.\n\
         # TYPE docket_strikes_in_effect gauge\n\
         docket_strikes_in_effect{{{labels}}} {}\n",
        status.tasks_running, status.disruptions, strikes
    );
    Response::text(200, "text/plain; version=0.0.4; charset=utf-8", body)
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(running: bool, draining: bool) -> WorkerStatus {
        WorkerStatus {
            running,
            draining,
            tasks_running: 2,
            disruptions: 1,
        }
    }

    #[test]
    fn health_says_why() {
        let ok = health("d", "w", status(true, false));
        assert_eq!(ok.code, 200);
        assert!(ok.body.contains("\"healthy\""), "{}", ok.body);
        assert_eq!(health("d", "w", status(true, true)).code, 503);
        assert!(
            health("d", "w", status(false, false))
                .body
                .contains("not running")
        );
    }

    #[test]
    fn metrics_escape_labels() {
        let text = metrics("d", "w\"1", status(true, false), 3).body;
        assert!(
            text.contains("docket_tasks_running{docket_name=\"d\",docket_worker=\"w\\\"1\"} 2"),
            "{text}"
        );
        assert!(text.contains("docket_redis_disruptions_total{"), "{text}");
        assert!(
            text.contains("docket_strikes_in_effect{docket_name=\"d\""),
            "{text}"
        );
        assert!(text.trim_end().ends_with(" 3"), "{text}");
    }
}
