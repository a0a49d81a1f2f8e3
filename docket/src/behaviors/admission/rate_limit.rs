//! `rate_limit(N, per = "..")`: at most N runs per sliding window, per task or per
//! argument value; over it a call is delayed until there is room, or dropped.

use std::time::Duration;

use super::{parked, scope, undecided};
use crate::backend::AdmissionRule;
use crate::behaviors::{Admission, Behavior};
use crate::execution::Execution;
use crate::model::RateLimit;

pub(super) struct RateLimiting {
    pub limit: RateLimit,
    pub retry_in: Duration,
}

impl Behavior for RateLimiting {
    async fn admit(&self, execution: &Execution) -> Admission {
        let task = execution.function();
        let limit = &self.limit;
        let rule = AdmissionRule::RateLimit {
            scope: scope(task, limit.arg, execution),
            member: format!("{}:{}", execution.key(), execution.generation()),
            limit: limit.limit,
            per: limit.per,
        };
        match execution.core().backend.admit(rule).await {
            Ok(None) => Admission::Run,
            Ok(Some(_)) if limit.drop => Admission::Cancel(format!(
                "rate limit: `{task}` already ran {} times in the last {:?}",
                limit.limit, limit.per
            )),
            Ok(Some(wait)) => {
                tracing::info!(key = %execution.key(), task, wait = ?wait, "rate limit reached: delaying the run");
                parked(execution);
                Admission::Defer(wait)
            }
            Err(error) => undecided(execution, &error, self.retry_in),
        }
    }
}
