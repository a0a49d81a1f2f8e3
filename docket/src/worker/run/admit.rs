//! Whether a delivery runs: the strikes in effect, then the behaviours and admission
//! rules asked about its task, then the worker's own `run_at_most` limits.

use std::collections::HashMap;

use crate::behaviors::Admission;
use crate::execution::Execution;
use crate::observe::metrics;
use crate::worker::Shared;

/// Whether a delivery runs now (and whether it is the last run its key may have under
/// `run_at_most`), later, or not at all. A run not admitted is logged and counted here.
pub(super) async fn admit(
    shared: &Shared,
    execution: &Execution,
    limits: Option<&RunLimits>,
) -> (Admission, bool) {
    // A strike in effect blocks the run (the record ends CANCELLED) before any
    // behaviour is asked; the same check `add` makes.
    let docket = &shared.docket;
    if let Some(strike) = docket.blocking_strike(execution.function(), execution.args()) {
        let reason = format!("stricken by `{strike}`");
        return (cancelled(shared, execution, STRICKEN, reason), false);
    }
    let admission = shared
        .behaviors(execution.function())
        .admit(execution)
        .await;
    if let Admission::Cancel(reason) = admission {
        return (cancelled(shared, execution, DROPPED, reason), false);
    }
    if admission != Admission::Run {
        return (admission, false);
    }
    // `run_at_most`: the limit is taken when a run is about to start, so a copy that
    // comes due before the key's last run was accounted for cannot run once too often.
    let Some(limits) = limits else {
        return (Admission::Run, false);
    };
    if let Some(last) = limits.take(execution.key()) {
        return (Admission::Run, last);
    }
    let reason = format!("`{}` reached its run_at_most limit", execution.key());
    (cancelled(shared, execution, DROPPED, reason), false)
}

/// The counter of runs a strike in effect blocked (`where="worker"`).
const STRICKEN: &str = "docket_tasks_stricken";
/// The counter of runs a behaviour or a limit cancelled.
const DROPPED: &str = "docket_tasks_dropped";

/// A run not admitted, counted in `counter` and logged.
fn cancelled(
    shared: &Shared,
    execution: &Execution,
    counter: &'static str,
    reason: String,
) -> Admission {
    let (key, function) = (execution.key(), execution.function());
    let mut labels = shared.task_labels(function).into_owned();
    if counter == STRICKEN {
        labels.push(("where", "worker".to_owned()));
    }
    metrics::count(counter, labels, 1);
    tracing::info!(docket.key = %key, docket.task = %function, %reason, "run dropped");
    Admission::Cancel(reason)
}

/// `run_at_most`: how many runs each limited key may still start.
pub(in crate::worker) struct RunLimits {
    left: std::sync::Mutex<HashMap<String, usize>>,
}

impl RunLimits {
    pub(in crate::worker) fn new(limits: HashMap<String, usize>) -> Self {
        Self {
            left: std::sync::Mutex::new(limits),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes one run of `key`: `None` when the key has used all of its runs, else
    /// whether this is its last one.
    fn take(&self, key: &str) -> Option<bool> {
        match self.lock().get_mut(key) {
            Some(0) => None,
            Some(left) => {
                *left -= 1;
                Some(*left == 0)
            }
            None => Some(false),
        }
    }
}
