#![allow(unused_variables)]
#[docket::task]
async fn wants_a_string(#[inject] name: String) {}

fn main() {}
