//! Adds tasks to a Redis docket for `examples/worker.rs` to run, then waits for them.
//!
//! ```sh
//! DOCKET_URL=redis://localhost:6379/0 cargo run --example producer
//! ```
//!
//! The producer only needs the task's argument struct and name: here it declares the
//! same signatures as the worker (in a real application both would share a crate).

use std::time::Duration;

use docket::Docket;

/// Adds two numbers (run by the worker).
#[docket::task]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Resizes images (run by the worker).
#[docket::task]
async fn resize_images(count: u64) -> String {
    format!("{count}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let name = std::env::var("DOCKET_NAME").unwrap_or_else(|_| "docket".into());
    let docket = Docket::connect(name, url).await?;
    let sum = docket.add(Add::new(2, 3)).await?;
    let images = docket
        .add(ResizeImages::new(10))
        .key("nightly-resize")
        .after(Duration::from_secs(2))
        .await?;
    println!(
        "added `{}` ({}) and `{}` ({})",
        sum.key(),
        sum.disposition(),
        images.key(),
        images.disposition()
    );
    println!(
        "2 + 3 = {}",
        sum.result_timeout(Duration::from_mins(1)).await?
    );
    println!("{}", images.result_timeout(Duration::from_mins(1)).await?);
    Ok(())
}
