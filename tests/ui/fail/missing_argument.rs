#[docket::task]
async fn send_email(to: String, subject: String) {
    let _ = (to, subject);
}

fn main() {
    let _ = SendEmail::new("ada@example.com".to_owned());
}
