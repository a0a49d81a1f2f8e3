#![allow(unused_variables)]
#[docket::task]
async fn send_email(to: String, subject: String) {}

fn main() {
    let _ = SendEmail::new("ada@example.com".to_owned());
}
