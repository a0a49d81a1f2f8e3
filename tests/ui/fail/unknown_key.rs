#[docket::task(retries = 3)]
async fn send_email(to: String) {
    let _ = to;
}

fn main() {}
