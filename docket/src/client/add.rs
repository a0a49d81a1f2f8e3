//! The builder `add` and `replace` return.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use super::Docket;
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::task::{Call, Task};

/// A call being added; set its key and due time, then `.await` it for an
/// [`Execution`] that knows the task's result type.
///
/// ```
/// # #[docket::task] async fn remind(note: String) {}
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> docket::Result<()> {
/// # let docket = docket::Docket::connect("doc-add", "memory://doc-add").await?;
/// use std::time::{Duration, SystemTime};
///
/// let at = SystemTime::now() + Duration::from_secs(3600);
/// let execution = docket.add(Remind::new("stand up".into())).key("remind-1").at(at).await?;
/// assert_eq!(execution.key(), "remind-1");
///
/// // A `chrono::DateTime` works as well as a `SystemTime`.
/// let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
/// let later = docket.add(Remind::new("review".into())).at(tomorrow).await?;
/// assert_eq!(later.when(), std::time::SystemTime::from(tomorrow));
/// # Ok(()) }
/// ```
///
/// The handle's result has the task's return type, checked by the compiler:
///
/// ```compile_fail
/// # #[docket::task] async fn double(n: i64) -> i64 { n * 2 }
/// # async fn example(docket: docket::Docket) -> docket::Result<()> {
/// let execution = docket.add(Double::new(21)).await?;
/// let text: String = execution.result().await?; // `double` returns an i64
/// # Ok(()) }
/// ```
#[must_use = "an added call does nothing until it is awaited"]
pub struct Add<'a, T> {
    docket: &'a Docket,
    call: Call,
    replace: bool,
    task: PhantomData<fn() -> T>,
}

impl<'a, T: Task> Add<'a, T> {
    pub(super) fn new(docket: &'a Docket, task: T, replace: bool) -> Self {
        Self {
            docket,
            call: Call::from(task),
            replace,
            task: PhantomData,
        }
    }

    /// Names the call (default: a new `UUIDv7`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.call = self.call.key(key);
        self
    }

    /// Runs it at `when`: a [`SystemTime`] or a `chrono::DateTime<Utc>`.
    pub fn at(mut self, when: impl Into<SystemTime>) -> Self {
        self.call = self.call.at(when);
        self
    }

    /// Runs it `delay` from now.
    pub fn after(mut self, delay: Duration) -> Self {
        self.call = self.call.after(delay);
        self
    }
}

impl<'a, T: Task> IntoFuture for Add<'a, T> {
    type Output = Result<Execution<T::Output>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut executions = self.docket.schedule(vec![self.call], self.replace).await?;
            executions
                .pop()
                .map(Execution::typed)
                .ok_or_else(|| Error::Protocol("the backend scheduled nothing".into()))
        })
    }
}
