//! The runs a worker ended since its last heartbeat, which carries them to the
//! docket's activity history: counted in memory per run, written once per heartbeat.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::Activity;

/// Runs ended and not yet reported.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    succeeded: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
}

impl Tally {
    pub(crate) fn succeeded(&self) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// What was counted since the last take, reset to nothing.
    pub(crate) fn take(&self) -> Activity {
        Activity::new(
            self.succeeded.swap(0, Ordering::Relaxed),
            self.failed.swap(0, Ordering::Relaxed),
            self.retried.swap(0, Ordering::Relaxed),
        )
    }

    /// Puts back what a heartbeat that failed could not report.
    pub(crate) fn restore(&self, activity: Activity) {
        self.succeeded
            .fetch_add(activity.succeeded, Ordering::Relaxed);
        self.failed.fetch_add(activity.failed, Ordering::Relaxed);
        self.retried.fetch_add(activity.retried, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_reports_each_run_once_and_a_restore_gives_it_back() {
        let tally = Tally::default();
        tally.succeeded();
        tally.succeeded();
        tally.failed();
        tally.retried();
        let taken = tally.take();
        assert_eq!(taken, Activity::new(2, 1, 1));
        assert!(tally.take().is_empty());
        tally.restore(taken);
        tally.succeeded();
        assert_eq!(tally.take(), Activity::new(3, 1, 1));
    }
}
