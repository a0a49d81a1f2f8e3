//! Testing support for applications: assertions on what a docket holds, and virtual
//! time for `memory://` dockets so that retries, perpetual and cron tasks run in tests
//! without waiting for real time.
//!
//! ```
//! use std::time::Duration;
//! use docket::testing;
//!
//! #[docket::task(retry = Exponential(5, 1m..1h))]
//! async fn sync_account(account: u64, retry: docket::Retry) -> Result<(), String> {
//!     if retry.attempt() < 4 { Err("upstream is down".into()) } else { Ok(()) }
//! }
//!
//! #[docket::task(perpetual = "1h")]
//! async fn hourly_report() {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! let docket = docket::Docket::connect("app-test", "memory://app-test").await?;
//! docket.add(SyncAccount::new(7)).key("sync-7").await?;
//! testing::assert_task_scheduled::<SyncAccount>(&docket).await;
//! testing::assert_call_scheduled(&docket, &SyncAccount::new(7)).await;
//!
//! // An idle worker jumps the clock to the next due task: three retries an hour
//! // apart, and five hourly reports, take no real time.
//! testing::auto_advance(&docket, true)?;
//! docket.add(HourlyReport::new()).key("report").await?;
//! let worker = docket::Worker::builder(docket.clone()).build()?;
//! worker.run_at_most([("report", 5)]).await?;
//! testing::assert_no_tasks(&docket).await;
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::client::Docket;
use crate::error::Result;
use crate::model::ExecutionRecord;
use crate::task::Task;

/// The calls waiting in `docket`: queued (due) and scheduled (future), soonest first.
///
/// # Errors
/// When the backend cannot be reached.
pub async fn waiting(docket: &Docket) -> Result<Vec<ExecutionRecord>> {
    let snapshot = docket.snapshot().await?;
    let mut all: Vec<_> = snapshot
        .queued
        .into_iter()
        .chain(snapshot.scheduled)
        .collect();
    all.sort_by_key(|r| r.message.when);
    Ok(all)
}

async fn waiting_or_panic(docket: &Docket) -> Vec<ExecutionRecord> {
    waiting(docket)
        .await
        .unwrap_or_else(|error| panic!("cannot read docket `{}`: {error}", docket.name()))
}

fn listing(records: &[ExecutionRecord]) -> String {
    if records.is_empty() {
        return "nothing".to_owned();
    }
    records.iter().fold(String::new(), |mut out, r| {
        let _ = write!(
            out,
            "\n  {} {} {} ({})",
            r.message.function,
            r.message.args,
            r.message.key,
            r.state.as_str()
        );
        out
    })
}

/// How many calls of `T` are waiting.
///
/// # Panics
/// When the backend cannot be reached.
pub async fn count_tasks<T: Task>(docket: &Docket) -> usize {
    waiting_or_panic(docket)
        .await
        .iter()
        .filter(|r| r.message.function == T::NAME)
        .count()
}

/// Asserts that a call of `T` is waiting, and returns the soonest one.
///
/// # Panics
/// When none is, listing what is waiting.
pub async fn assert_task_scheduled<T: Task>(docket: &Docket) -> ExecutionRecord {
    let all = waiting_or_panic(docket).await;
    all.iter()
        .find(|r| r.message.function == T::NAME)
        .cloned()
        .unwrap_or_else(|| panic!("no `{}` is scheduled; waiting: {}", T::NAME, listing(&all)))
}

/// Asserts that this very call (same task, same arguments) is waiting, and returns it.
///
/// # Panics
/// When it is not, listing what is waiting.
pub async fn assert_call_scheduled<T: Task>(docket: &Docket, call: &T) -> ExecutionRecord {
    let expected = serde_json::to_value(call).expect("the call's arguments serialize");
    let all = waiting_or_panic(docket).await;
    all.iter()
        .find(|r| {
            r.message.function == T::NAME
                && serde_json::from_str::<serde_json::Value>(&r.message.args)
                    .is_ok_and(|a| a == expected)
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no `{}` with arguments {expected} is scheduled; waiting: {}",
                T::NAME,
                listing(&all)
            )
        })
}

/// Asserts that exactly `count` calls of `T` are waiting.
///
/// # Panics
/// When another number is, listing what is waiting.
pub async fn assert_task_count<T: Task>(docket: &Docket, count: usize) {
    let all = waiting_or_panic(docket).await;
    let found = all.iter().filter(|r| r.message.function == T::NAME).count();
    assert!(
        found == count,
        "expected {count} `{}` waiting, found {found}; waiting: {}",
        T::NAME,
        listing(&all)
    );
}

/// Asserts that nothing is queued or scheduled.
///
/// # Panics
/// When something is, listing it.
pub async fn assert_no_tasks(docket: &Docket) {
    let all = waiting_or_panic(docket).await;
    assert!(
        all.is_empty(),
        "expected no tasks; waiting: {}",
        listing(&all)
    );
}

/// Moves a `memory://` docket's clock `by` ahead: tasks due by then are promoted at the
/// worker's next scheduler pass.
///
/// # Errors
/// [`Error::InvalidOption`](crate::Error::InvalidOption) on a Redis docket, whose clock
/// is the server's.
pub fn advance(docket: &Docket, by: Duration) -> Result<()> {
    docket.backend().virtual_time(by, None)
}

/// With `on`, a `memory://` docket that has nothing queued or running jumps its clock
/// to its next scheduled task, so waits take no real time.
///
/// # Errors
/// As [`advance`].
pub fn auto_advance(docket: &Docket, on: bool) -> Result<()> {
    docket.backend().virtual_time(Duration::ZERO, Some(on))
}
