#![allow(unused_variables)]
#[docket::task(retries = 3)]
async fn misspelled() {}

fn main() {}
