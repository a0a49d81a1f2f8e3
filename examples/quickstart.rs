//! The quickstart: declare tasks, enqueue typed calls now and later, run a worker until
//! everything is done, and read the results.
//!
//! Runs in-process on `memory://` with no server:
//!
//! ```sh
//! cargo run --example quickstart
//! ```
//!
//! Set `DOCKET_URL=redis://localhost:6379/0` to run the same program against Redis.

use std::time::Duration;

use docket::{Docket, Progress, Worker};

/// A task with arguments and a result.
#[docket::task]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// A task that reports its progress while it works.
#[docket::task(timeout = "30s")]
async fn resize_images(count: u64, progress: Progress) -> docket::Result<String> {
    progress.set_total(count).await?;
    for n in 1..=count {
        progress
            .set_message(format!("resizing image {n} of {count}"))
            .await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        progress.increment(1).await?;
    }
    Ok(format!("{count} images resized"))
}

/// A task that fails: its error is recorded and handed back to whoever asks.
#[docket::task]
async fn charge_card(customer: String, cents: u64) -> Result<(), String> {
    Err(format!("card of {customer} declined for {cents} cents"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .init();
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://quickstart".to_owned());
    let docket = Docket::connect("quickstart", &url).await?;
    println!("docket `quickstart` on {url}");

    // Enqueue typed calls: now, later, and under a key of our choosing.
    let sum = docket.add(Add::new(20, 22)).await?;
    let images = docket
        .add(ResizeImages::new(5))
        .key("resize-batch-1")
        .await?;
    let later = docket
        .add(Add::new(1, 2))
        .after(Duration::from_secs(1))
        .await?;
    let declined = docket.add(ChargeCard::new("ada".into(), 4_200)).await?;
    println!(
        "added {} tasks; `{}` is {}",
        4,
        later.key(),
        later.state().await?
    );

    // Watch the image task's progress while a worker runs everything.
    let watcher = tokio::spawn({
        let images = images.clone();
        async move {
            use futures::StreamExt;
            let mut events = images.subscribe().await?;
            let mut shown = 0;
            while let Some(event) = events.next().await {
                // Print each unit of work once, as it completes.
                if let docket::Event::Progress(p) = event
                    && p.current > shown
                {
                    shown = p.current;
                    println!(
                        "  progress {}/{}: {}",
                        p.current,
                        p.total.unwrap_or(0),
                        p.message.unwrap_or_default()
                    );
                }
            }
            anyhow::Ok(())
        }
    });

    let worker = Worker::builder(docket.clone()).concurrency(4).build()?;
    worker.run_until_finished().await?;
    watcher.await??;

    println!("add(20, 22) = {}", sum.result().await?);
    println!("resize_images: {}", images.result().await?);
    println!("add(1, 2) one second later = {}", later.result().await?);
    match declined.result().await {
        Err(docket::Error::TaskFailed { error, .. }) => println!("charge_card failed: {error}"),
        other => println!("charge_card: {other:?}"),
    }
    Ok(())
}
