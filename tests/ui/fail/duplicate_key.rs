#[docket::task(timeout = "1m", name = "mail", timeout = "2m")]
async fn send_email(to: String) {
    let _ = to;
}

fn main() {}
