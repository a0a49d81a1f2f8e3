#[docket::task(retry = 3, retry = Exponential(5, 1s..1m))]
async fn send_email(to: String) {
    let _ = to;
}

fn main() {}
