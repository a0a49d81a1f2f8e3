#![allow(unused_variables)]
#[docket::task(timeout = "1s", timeout = "2s")]
async fn twice() {}

fn main() {}
