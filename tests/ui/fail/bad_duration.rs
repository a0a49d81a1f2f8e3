#[docket::task(timeout = "5 parsecs")]
async fn send_email(to: String) {
    let _ = to;
}

fn main() {}
