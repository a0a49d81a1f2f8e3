#![allow(unused_variables)]
#[docket::task(retry = Exponential(5, 10m..30s))]
async fn backwards() {}

fn main() {}
