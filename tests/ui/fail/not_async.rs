#![allow(unused_variables)]
#[docket::task]
fn not_async(n: u32) -> u32 {
    n
}

fn main() {}
