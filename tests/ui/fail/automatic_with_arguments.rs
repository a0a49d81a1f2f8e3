#[docket::task(perpetual = "1m", automatic)]
async fn sweep(region: String, execution: docket::Execution) {
    let _ = (region, execution);
}

fn main() {}
