#![allow(unused_variables)]
#[docket::task(retry = 3, retry = Exponential(5, 1s..1m))]
async fn retried_twice() {}

fn main() {}
