#![allow(unused_variables)]
#[docket::task(perpetual = "1m", cron = "@daily")]
async fn confused() {}

fn main() {}
