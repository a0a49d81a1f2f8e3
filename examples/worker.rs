//! An application binary: its own tasks, and the whole docket command line.
//!
//! ```sh
//! cargo run --example worker -- worker --concurrency 20     # on redis://localhost:6379/0
//! cargo run --example worker -- --url redis://127.0.0.1:6379/0 snapshot --stats
//! cargo run --example worker -- tasks trace "is anyone there?"
//! ```
//!
//! SIGTERM or Ctrl-C stops claiming and lets running tasks finish before exiting 0.

use std::time::Duration;

use docket::Progress;

/// Adds two numbers.
#[docket::task]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Pretends to resize images, reporting progress.
#[docket::task(timeout = "5m")]
async fn resize_images(count: u64, progress: Progress) -> docket::Result<String> {
    progress.set_total(count).await?;
    for _ in 0..count {
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.increment(1).await?;
    }
    Ok(format!("{count} images resized"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker().await
}
