#[docket::task(perpetual = "1m", cron = "0 9 * * *")]
async fn sweep() {}

fn main() {}
