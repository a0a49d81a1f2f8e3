//! `cooldown = ".."`: a call within the window after a run of the task started is dropped.

use std::time::Duration;

use super::undecided;
use crate::backend::AdmissionRule;
use crate::behaviors::{Admission, Behavior};
use crate::execution::Execution;

pub(super) struct Cooldown {
    pub window: Duration,
    pub retry_in: Duration,
}

impl Behavior for Cooldown {
    async fn admit(&self, execution: &Execution) -> Admission {
        let task = execution.function();
        let rule = AdmissionRule::Cooldown {
            scope: task.to_owned(),
            window: self.window,
        };
        match execution.core().backend.admit(rule).await {
            Ok(None) => Admission::Run,
            Ok(Some(_)) => Admission::Cancel(format!(
                "cooldown: `{task}` ran less than {:?} ago",
                self.window
            )),
            Err(error) => undecided(execution, &error, self.retry_in),
        }
    }
}
