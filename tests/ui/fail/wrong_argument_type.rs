#[docket::task]
async fn send_email(to: String, subject: String) {
    let _ = (to, subject);
}

fn main() {
    let _ = SendEmail::new(42, "hello".to_owned());
}
