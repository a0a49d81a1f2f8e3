#![allow(unused_variables)]
#[docket::task(perpetual = "1m", automatic)]
async fn sweep(older_than_days: u32) {}

fn main() {}
