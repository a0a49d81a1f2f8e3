#[docket::task(cron = "0 25 * * 1-5")]
async fn morning_report() {}

fn main() {}
