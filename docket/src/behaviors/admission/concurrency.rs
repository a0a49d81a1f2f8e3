//! `concurrency(max = N, arg = .., scope = "..")`: at most N runs at once. A run holds a
//! slot while it runs (renewed with its message, released when it ends); a call that
//! finds none free waits for one, parked in FIFO order and woken when a slot frees.

use std::time::Duration;

use super::{parked, scope, undecided};
use crate::backend::{AdmissionRule, Slot};
use crate::behaviors::{Admission, Behavior};
use crate::execution::{Execution, SlotUse};
use crate::model::ConcurrencyLimit;

pub(super) struct Concurrency {
    pub limit: ConcurrencyLimit,
    /// How long a slot is held before it must be renewed.
    pub lease: Duration,
    pub retry_in: Duration,
}

impl Behavior for Concurrency {
    async fn admit(&self, execution: &Execution) -> Admission {
        let task = execution.function();
        let slot = Slot {
            scope: scope(self.limit.scope.unwrap_or(task), self.limit.arg, execution),
            max: self.limit.max,
        };
        let rule = AdmissionRule::Concurrency {
            slot: slot.clone(),
            key: execution.key().to_owned(),
            lease: self.lease,
        };
        let taken = match execution.core().backend.admit(rule).await {
            Ok(refused) => refused.is_none(),
            Err(error) => return undecided(execution, &error, self.retry_in),
        };
        let Some(control) = execution.control() else {
            return Admission::Run;
        };
        if taken {
            control.set_slot(SlotUse::Held(slot));
            return Admission::Run;
        }
        parked(execution);
        tracing::info!(
            docket.key = %execution.key(), docket.task = %task,
            scope = %slot.scope, max = slot.max,
            "concurrency limit reached: waiting for a slot"
        );
        // Not run now: the worker parks the call as a waiter of the slot's scope.
        control.set_slot(SlotUse::Awaited(slot));
        Admission::Defer(Duration::ZERO)
    }
}
