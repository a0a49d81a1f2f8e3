//! Perpetual and cron tasks: a poller that runs every 200 ms and carries its cursor
//! from run to run, and an automatic cron task that every worker schedules by itself.
//!
//! ```sh
//! cargo run --example perpetual        # memory://; DOCKET_URL=redis://... for Redis
//! ```

use docket::{Docket, Perpetual, Worker};

/// Reads a feed page by page, every 200 ms; stops when the feed is done.
#[docket::task(perpetual = "200ms")]
async fn poll_feed(cursor: u64, perpetual: Perpetual) -> docket::Result<u64> {
    println!("polling the feed from cursor {cursor}");
    if cursor >= 40 {
        perpetual.cancel(); // nothing left: end the chain
    } else {
        perpetual.perpetuate(PollFeed::new(cursor + 10))?; // the next run's arguments
    }
    Ok(cursor)
}

/// Every weekday at 09:00 in Paris; workers seed it at startup (cron tasks are automatic).
#[docket::task(cron(expr = "0 9 * * 1-5", tz = "Europe/Paris"))]
async fn morning_digest() {
    println!("sending the morning digest");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://perpetual".into());
    let docket = Docket::connect("perpetual-example", url).await?;
    let feed = docket.add(PollFeed::new(0)).key("feed").await?;

    let worker = Worker::builder(docket.clone()).build()?;
    let stop = worker.shutdown_handle();
    let running = tokio::spawn(async move { worker.run_forever().await });
    // The poller ends its own chain after five runs.
    println!("last cursor: {}", feed.result().await?);

    let snapshot = docket.snapshot().await?;
    for record in snapshot
        .scheduled
        .iter()
        .filter(|r| r.message.function == "morning_digest")
    {
        let when = chrono::DateTime::<chrono::Utc>::from(record.message.when);
        println!("morning_digest is scheduled for {when}");
    }
    stop.shutdown();
    running.await??;
    Ok(())
}
