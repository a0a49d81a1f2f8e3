#![allow(unused_variables)]
#[docket::task(automatic)]
async fn lonely() {}

fn main() {}
