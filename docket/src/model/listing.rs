//! Reading a docket a page at a time: which live tasks ([`Listing`]), one [`Page`] of
//! them, and the [`Activity`] workers report with their heartbeats.

use std::time::SystemTime;

use super::ExecutionRecord;

/// Which live tasks a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// Due, waiting for a worker, oldest first.
    Queued,
    /// Parked until their due time, soonest first.
    Scheduled,
    /// Delivered to a worker and not finished, in the order they were queued.
    Running,
}

impl Listing {
    /// Every listing, in the order a task passes through them.
    pub const ALL: [Listing; 3] = [Listing::Scheduled, Listing::Queued, Listing::Running];

    /// Its name in lower case: `queued`, `scheduled` or `running`.
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Queued => "queued",
            Listing::Scheduled => "scheduled",
            Listing::Running => "running",
        }
    }

    /// The listing named `name` (`queued`, `scheduled` or `running`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|listing| listing.as_str() == name)
    }
}

/// One page of live tasks: at most the number asked for, and where the next page
/// starts. Reading a page costs the same however long the list is.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Page {
    /// The tasks of this page, in the listing's order.
    pub records: Vec<ExecutionRecord>,
    /// The cursor of the next page (opaque; give it back as `after`), or `None` on the
    /// last page.
    pub next: Option<String>,
}

impl Page {
    pub(crate) fn new(records: Vec<ExecutionRecord>, next: Option<String>) -> Self {
        Self { records, next }
    }
}

/// How many tasks are live, by listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskCounts {
    /// Due, waiting for a worker.
    pub queued: usize,
    /// Parked until their due time.
    pub scheduled: usize,
    /// Being run.
    pub running: usize,
}

impl TaskCounts {
    pub(crate) fn is_empty(self) -> bool {
        self.total() == 0
    }

    /// Tasks queued, scheduled or running.
    pub fn total(&self) -> usize {
        self.queued + self.scheduled + self.running
    }

    /// The count of one listing.
    pub fn of(&self, listing: Listing) -> usize {
        match listing {
            Listing::Queued => self.queued,
            Listing::Scheduled => self.scheduled,
            Listing::Running => self.running,
        }
    }
}

/// How many runs ended, and how, over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Activity {
    /// Runs that completed.
    pub succeeded: u64,
    /// Runs that failed (a retry follows some of them: see `retried`).
    pub failed: u64,
    /// Runs that failed and were scheduled to be tried again.
    pub retried: u64,
}

impl Activity {
    /// Counts of runs.
    pub fn new(succeeded: u64, failed: u64, retried: u64) -> Self {
        Self {
            succeeded,
            failed,
            retried,
        }
    }

    /// Whether nothing happened.
    pub fn is_empty(&self) -> bool {
        self.succeeded == 0 && self.failed == 0 && self.retried == 0
    }

    /// Adds another span's counts to these.
    pub fn add(&mut self, other: Activity) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retried += other.retried;
    }
}

/// What the workers of a docket did in one interval of its recent history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActivityInterval {
    /// When the interval starts, by the docket's clock.
    pub start: SystemTime,
    /// The runs that ended in it.
    pub activity: Activity,
}

impl ActivityInterval {
    pub(crate) fn new(start: SystemTime, activity: Activity) -> Self {
        Self { start, activity }
    }
}
