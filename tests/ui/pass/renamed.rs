//! `name = "..."` sets the wire name; the struct keeps the function's name.

use docket::{Call, Task};

#[docket::task(name = "mail.send")]
pub async fn send_email(to: String) {
    let _ = to;
}

fn main() {
    assert_eq!(<SendEmail as Task>::NAME, "mail.send");
    let call: Call = SendEmail::new("ada@example.com".to_owned()).into();
    assert_eq!(call.function(), "mail.send");
    let names: Vec<&str> = docket::__private::registered()
        .map(docket::__private::TaskRegistration::name)
        .collect();
    assert!(names.contains(&"mail.send"));
    assert!(!names.contains(&"send_email"));
}
