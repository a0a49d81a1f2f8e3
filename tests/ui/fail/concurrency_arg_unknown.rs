#![allow(unused_variables)]
#[docket::task(concurrency(max = 1, arg = customer))]
async fn sync_account(customer_id: String) {}

fn main() {}
