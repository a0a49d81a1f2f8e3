#[docket::task(automatic)]
async fn seed_cache() {}

fn main() {}
