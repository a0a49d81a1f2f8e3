//! A worker for the quickstart's kind of tasks, on Redis (or any `DOCKET_URL`).
//!
//! ```sh
//! DOCKET_URL=redis://localhost:6379/0 cargo run --example worker
//! ```
//!
//! Stops on Ctrl-C, letting running tasks finish.

use std::time::Duration;

use docket::{Docket, Progress, Worker};

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
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let name = std::env::var("DOCKET_NAME").unwrap_or_else(|_| "docket".into());
    let docket = Docket::connect(name, url).await?;
    let worker = Worker::builder(docket).concurrency(10).build()?;
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.shutdown();
    });
    worker.run_forever().await?;
    Ok(())
}
