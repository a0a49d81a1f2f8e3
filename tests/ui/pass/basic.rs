use docket::{Progress, Task, TaskKey};

#[docket::task]
async fn send_email(to: String, subject: String, key: TaskKey, progress: Progress) -> Result<u32, String> {
    let _ = (key, progress);
    Ok(u32::try_from(to.len() + subject.len()).unwrap_or(0))
}

#[docket::task]
async fn no_arguments() {}

fn main() {
    let call: docket::Call = SendEmail::new("a@b.c".into(), "hi".into()).into();
    assert_eq!(call.function(), "send_email");
    assert_eq!(<SendEmail as Task>::NAME, "send_email");
    let _: <SendEmail as Task>::Output = 7u32;
    let _: <NoArguments as Task>::Output = ();
    let _ = NoArguments::new();
    // The function itself is unchanged and callable directly.
    let _callable: fn(String, String, TaskKey, Progress) -> _ = send_email;
}
