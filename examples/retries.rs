//! Retries: a flaky call retried with exponential backoff, a task that chooses its own
//! retry delay, and a timeout that retries too.
//!
//! ```sh
//! cargo run --example retries          # memory://; DOCKET_URL=redis://... for Redis
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use docket::{Docket, Retry, Timeout, Worker};

static UPSTREAM_CALLS: AtomicU32 = AtomicU32::new(0);

/// Fails twice (the upstream is "down"), then succeeds: 3 attempts, 100 ms then 200 ms apart.
#[docket::task(retry = Exponential(5, 100ms..2s))]
async fn sync_account(account: u64, retry: Retry) -> Result<String, String> {
    let call = UPSTREAM_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if call < 3 {
        return Err(format!(
            "upstream unavailable (attempt {} of {:?})",
            retry.attempt(),
            retry.attempts()
        ));
    }
    Ok(format!(
        "account {account} synced on attempt {}",
        retry.attempt()
    ))
}

/// Polls an export; asks to be retried in 150 ms while it is not ready.
#[docket::task]
async fn wait_for_export(export_id: u64, retry: Retry) -> anyhow::Result<String> {
    if retry.attempt() < 3 {
        return Err(retry.after(Duration::from_millis(150)).into());
    }
    Ok(format!(
        "export {export_id} ready after {} polls",
        retry.attempt()
    ))
}

/// Needs more than its 100 ms budget, so it extends it once.
#[docket::task(timeout = "100ms", retry = 2)]
async fn generate_report(pages: u64, timeout: Timeout) -> String {
    timeout.extend(Duration::from_millis(200));
    tokio::time::sleep(Duration::from_millis(pages * 20)).await;
    format!("{pages} pages")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://retries".into());
    let docket = Docket::connect("retries-example", url).await?;

    let synced = docket.add(SyncAccount::new(42)).await?;
    let export = docket.add(WaitForExport::new(7)).await?;
    let report = docket.add(GenerateReport::new(10)).await?;
    Worker::builder(docket.clone())
        .build()?
        .run_until_finished()
        .await?;

    println!("{}", synced.result().await?);
    println!("{}", export.result().await?);
    println!("report of {}", report.result().await?);
    Ok(())
}
