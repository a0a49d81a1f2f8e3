#![allow(unused_variables)]
#[docket::task(cron = "every morning")]
async fn report() {}

fn main() {}
