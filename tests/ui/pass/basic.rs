//! A task with data and injected parameters, and one with neither.

use docket::{Call, Progress, Retry, Task};

/// Data first, then injected values, as the README shows.
#[docket::task]
pub async fn send_email(
    to: String,
    subject: String,
    retry: Retry,
    progress: Progress,
) -> Result<(), String> {
    progress
        .set_message(format!("{to}: {subject} (attempt {})", retry.attempt()))
        .await
        .map_err(|error| error.to_string())
}

/// Injected parameters may come first and data may be `mut`.
#[docket::task]
async fn count_up(execution: docket::Execution, mut from: u64, to: u64) -> u64 {
    let _ = execution.key();
    while from < to {
        from += 1;
    }
    from
}

#[docket::task]
async fn tidy() {}

fn main() {
    let call = SendEmail::new("ada@example.com".to_owned(), "hello".to_owned());
    assert_eq!(call.to, "ada@example.com");
    assert_eq!(call.subject, "hello");
    let call: Call = call.into();
    assert_eq!(call.function(), "send_email");
    assert_eq!(<SendEmail as Task>::NAME, "send_email");
    let (): <SendEmail as Task>::Output = ();

    let _: Call = CountUp::new(1, 3).into();
    let _: u64 = CountUp::new(1, 3).from;
    let output: <CountUp as Task>::Output = 3_u64;
    assert_eq!(output, 3);

    let _: Call = Tidy::new().into();
    let Tidy {} = Tidy::new();

    // Every task registers itself, with its data parameters in order.
    let registered = |name: &str| docket::__private::registered().find(|task| task.name() == name);
    assert_eq!(
        registered("send_email").unwrap().parameters(),
        ["to", "subject"]
    );
    assert_eq!(registered("count_up").unwrap().parameters(), ["from", "to"]);
    assert!(registered("tidy").unwrap().parameters().is_empty());
    assert_eq!(registered("tidy").unwrap().module_path(), module_path!());

    // The function itself stays callable.
    let _future = tidy();
}
