#[docket::task(retry = Exponential(5, 10m..30s))]
async fn send_email(to: String) {
    let _ = to;
}

fn main() {}
