#![allow(unused_variables)]
#[docket::task]
async fn send_email(to: String, subject: String) {}

fn main() {
    let _ = SendEmail::new(42, "hello".to_owned());
}
