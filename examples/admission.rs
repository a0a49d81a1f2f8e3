//! Admission control: one sync per customer at a time, a rate-limited API, a debounced
//! reindex and a cooled-down alert — held across every worker of the docket.
//!
//! ```sh
//! cargo run --example admission        # memory://; DOCKET_URL=redis://... for Redis
//! ```

use std::time::{Duration, Instant};

use docket::{Docket, ExecutionState, Worker};

/// One sync per customer at a time; other customers sync in parallel.
#[docket::task(concurrency(max = 1, arg = customer))]
async fn sync_customer(customer: String, batch: u32) {
    println!("sync {customer} batch {batch}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// At most 5 calls a second to the partner API; calls over the limit wait.
#[docket::task(rate_limit(5, per = "1s"))]
async fn call_partner_api(request: u32) {
    let _ = request;
}

/// Many edits in a row, one reindex 200 ms after the last.
#[docket::task(debounce = "200ms")]
async fn reindex(reason: String) {
    println!("reindexing after: {reason}");
}

/// An alert at most once every 10 s; alerts within the window are dropped.
#[docket::task(cooldown = "10s")]
async fn page_oncall(message: String) {
    println!("paging: {message}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://admission".into());
    let docket = Docket::connect("admission-example", url).await?;

    for batch in 0..3 {
        for customer in ["acme", "globex"] {
            docket
                .add(SyncCustomer::new(customer.into(), batch))
                .await?;
        }
    }
    for request in 0..12 {
        docket.add(CallPartnerApi::new(request)).await?;
    }
    for edit in 0..20 {
        docket.add(Reindex::new(format!("edit {edit}"))).await?;
    }
    let mut pages = Vec::new();
    for n in 0..3 {
        pages.push(
            docket
                .add(PageOncall::new(format!("disk full ({n})")))
                .await?,
        );
    }

    let started = Instant::now();
    Worker::builder(docket.clone())
        .concurrency(20)
        .build()?
        .run_until_finished()
        .await?;
    println!(
        "12 partner calls at 5/s and the rest took {:?}",
        started.elapsed()
    );
    for page in pages {
        if page.state().await? == ExecutionState::Cancelled {
            let reason = page.record().await?.and_then(|r| r.error);
            println!(
                "dropped: {}",
                reason.map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    Ok(())
}
