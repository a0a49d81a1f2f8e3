//! Strikes: block a misbehaving customer's orders, and a whole task, without a deploy;
//! then restore them.
//!
//! ```sh
//! cargo run --example strikes          # memory://; DOCKET_URL=redis://... for Redis
//! # the same from a shell, against Redis:
//! #   docket strike process_order customer_id == problematic-customer
//! #   docket strikes
//! #   docket restore process_order customer_id == problematic-customer
//! ```

use docket::strikes::{Operator, Strike};
use docket::{Docket, Worker};

#[docket::task]
async fn process_order(customer_id: String, amount: u64) -> String {
    format!("order of {amount} for {customer_id} processed")
}

#[docket::task]
async fn send_newsletter(edition: u32) {
    println!("newsletter {edition} sent");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://strikes".into());
    let docket = Docket::connect("strikes-example", url).await?;

    // Orders queued before anyone noticed the problem.
    let early = docket
        .add(ProcessOrder::new("problematic-customer".into(), 30))
        .await?;

    let bad_customer = Strike::when("customer_id", Operator::Equal, "problematic-customer")
        .for_task("process_order");
    docket.strike(bad_customer.clone()).await?;
    docket.strike(Strike::task("send_newsletter")).await?;
    for strike in docket.strikes() {
        println!("in effect: {strike}");
    }

    let blocked = docket
        .add(ProcessOrder::new("problematic-customer".into(), 99))
        .await?;
    let fine = docket.add(ProcessOrder::new("regular".into(), 10)).await?;
    let newsletter = docket.add(SendNewsletter::new(12)).await?;
    println!(
        "new order from the problematic customer: {}",
        blocked.disposition()
    );
    println!("newsletter: {}", newsletter.disposition());

    Worker::builder(docket.clone())
        .build()?
        .run_until_finished()
        .await?;
    println!(
        "the order queued before the strike: {}",
        early.state().await?
    );
    println!("{}", fine.result().await?);

    docket.restore(bad_customer).await?;
    docket.restore(Strike::task("send_newsletter")).await?;
    let retry = docket
        .add(ProcessOrder::new("problematic-customer".into(), 99))
        .await?;
    Worker::builder(docket.clone())
        .build()?
        .run_until_finished()
        .await?;
    println!("after restore: {}", retry.result().await?);
    Ok(())
}
