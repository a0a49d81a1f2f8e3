//! A worker's health and readiness, as its `--healthcheck-port` answers them.

use super::WorkerStatus;
use crate::observe::Response;

/// The health check's answer: 200 while the worker runs and is not draining, 503 with
/// the reason otherwise.
pub(crate) fn health(docket: &str, worker: &str, status: WorkerStatus) -> Response {
    let problem = if !status.running {
        Some("not running".to_owned())
    } else if status.draining {
        Some("draining: no longer taking tasks".to_owned())
    } else if let Some(refusal) = status.refused {
        Some(format!(
            "Redis refuses writes with {}: {}; backing off until it clears",
            refusal.code(),
            refusal.meaning()
        ))
    } else if !status.connected {
        Some("lost the connection to the docket".to_owned())
    } else if status.since_progress > status.stall_limit {
        Some("the worker loop has stalled".to_owned())
    } else {
        None
    };
    let body = serde_json::json!({
        "status": if problem.is_some() { "unhealthy" } else { "healthy" },
        "reason": problem,
        "docket": docket,
        "worker": worker,
        "tasks_running": status.tasks_running,
        "disruptions": status.disruptions,
        "last_progress_ms": u64::try_from(status.since_progress.as_millis()).unwrap_or(u64::MAX),
    });
    Response::json(if problem.is_some() { 503 } else { 200 }, &body)
}

/// Ready once the worker runs: its strikes are loaded and its consumer group exists.
pub(crate) fn ready(docket: &str, worker: &str, status: WorkerStatus) -> Response {
    let ready = status.running && status.connected && !status.draining;
    let body = serde_json::json!({ "ready": ready, "docket": docket, "worker": worker });
    Response::json(if ready { 200 } else { 503 }, &body)
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
            connected: true,
            refused: None,
            since_progress: std::time::Duration::from_millis(10),
            stall_limit: std::time::Duration::from_secs(5),
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
        let lost = WorkerStatus {
            connected: false,
            ..status(true, false)
        };
        let answer = health("d", "w", lost);
        assert_eq!(answer.code, 503);
        assert!(
            answer.body.contains("lost the connection"),
            "{}",
            answer.body
        );
        let refused = WorkerStatus {
            connected: false,
            refused: Some(crate::WriteRefusal::NotEnoughReplicas),
            ..status(true, false)
        };
        let answer = health("d", "w", refused);
        assert_eq!(answer.code, 503);
        assert!(answer.body.contains("NOREPLICAS"), "{}", answer.body);
        let stalled = WorkerStatus {
            since_progress: std::time::Duration::from_mins(1),
            ..status(true, false)
        };
        assert!(health("d", "w", stalled).body.contains("stalled"));
    }
}
