#![allow(unused_variables)]
#[docket::task(timeout = 5parsecs)]
async fn far_away() {}

#[docket::task(timeout = "soon")]
async fn vague() {}

#[docket::task(timeout = 30)]
async fn unitless() {}

fn main() {}
