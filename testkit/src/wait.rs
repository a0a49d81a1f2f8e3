//! Waiting for an event instead of sleeping a tuned time: poll a condition (or a
//! child's log) until it holds, with a generous deadline and a panic naming what was
//! awaited and what was last seen.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// How often [`wait_for`] polls.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// A point in time by which something awaited must have happened.
#[derive(Debug, Clone)]
pub struct Deadline {
    what: String,
    within: Duration,
    at: Instant,
}

impl Deadline {
    /// `within` from now, for the event `what` ("the worker to start").
    pub fn after(within: Duration, what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            within,
            at: Instant::now() + within,
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Panics once the deadline has passed, naming the event and `last`, what was
    /// seen instead.
    ///
    /// # Panics
    /// When the deadline has passed.
    #[track_caller]
    pub fn check(&self, last: &impl fmt::Debug) {
        if let Err(timed_out) = self.try_check(last) {
            panic!("{timed_out}");
        }
    }

    /// [`Deadline::check`], with an error instead of a panic.
    ///
    /// # Errors
    /// [`TimedOut`] once the deadline has passed, naming the event and `last`.
    pub fn try_check(&self, last: &impl fmt::Debug) -> Result<(), TimedOut> {
        if self.passed() {
            Err(TimedOut {
                what: self.what.clone(),
                within: self.within,
                last: format!("{last:?}"),
            })
        } else {
            Ok(())
        }
    }
}

/// A wait that gave up: what it waited for, for how long, and what it saw last.
#[derive(Debug, Clone)]
pub struct TimedOut {
    what: String,
    within: Duration,
    last: String,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for {}; last seen: {}",
            self.within, self.what, self.last
        )
    }
}

impl std::error::Error for TimedOut {}

/// Polls `poll` until it answers `Ok`, and returns what it answered. `Err` means "not
/// yet" and carries what was seen, for the panic message.
///
/// # Panics
/// When `poll` has not answered `Ok` within `within`, naming `what` and the last `Err`.
pub async fn wait_for<T, E, F, Fut>(within: Duration, what: &str, poll: F) -> T
where
    E: fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    try_wait_for(&Deadline::after(within, what), POLL_EVERY, poll)
        .await
        .unwrap_or_else(|timed_out| panic!("{timed_out}"))
}

/// Polls `poll` every `every` until it answers `Ok`, and returns what it answered:
/// [`wait_for`] at a pace of the caller's choice (a poll that opens connections need not
/// run a hundred times a second), giving up with an error the caller can add to (say,
/// with a server's log).
///
/// # Errors
/// [`TimedOut`] when `poll` has not answered `Ok` by `deadline`, with the last `Err`.
pub async fn try_wait_for<T, E, F, Fut>(
    deadline: &Deadline,
    every: Duration,
    mut poll: F,
) -> Result<T, TimedOut>
where
    E: fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    loop {
        match poll().await {
            Ok(value) => return Ok(value),
            Err(last) => deadline.try_check(&last)?,
        }
        tokio::time::sleep(every).await;
    }
}

/// What [`eventually`] saw while its check did not hold.
struct Unmet;

impl fmt::Debug for Unmet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the check did not hold")
    }
}

/// Waits until `check` holds: [`wait_for`] for a plain condition.
///
/// # Panics
/// When `check` has not held within `within`, naming `what`.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    wait_for(within, what, || {
        std::future::ready(if check() { Ok(()) } else { Err(Unmet) })
    })
    .await;
}

/// A child process's output (its stderr, say), read line by line in the background
/// so that a test can wait for a line and still have the whole text at the end.
#[derive(Debug)]
pub struct LogWatch {
    lines: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl LogWatch {
    /// Starts reading `output` (for instance `child.stderr.take().unwrap()`); must be
    /// called within a Tokio runtime.
    pub fn new(output: impl AsyncRead + Unpin + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = tokio::spawn(async move {
            let mut output = BufReader::new(output);
            let mut line = Vec::new();
            while output
                .read_until(b'\n', &mut line)
                .await
                .is_ok_and(|n| n > 0)
            {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(text);
                line.clear();
            }
        });
        Self { lines, reader }
    }

    /// Waits until a line containing `needle` has been written, and returns it.
    ///
    /// # Panics
    /// When no such line came within `within`, showing the lines so far.
    pub async fn wait_for_line(&self, within: Duration, needle: &str) -> String {
        wait_for(within, &format!("a log line with `{needle}`"), || {
            let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
            let found = lines.iter().find(|line| line.contains(needle)).cloned();
            std::future::ready(found.ok_or_else(|| lines.join("\n")))
        })
        .await
    }

    /// Everything written, once the output has ended (the process exited or closed it).
    ///
    /// # Panics
    /// When the background reader panicked.
    pub async fn text(self) -> String {
        self.reader.await.expect("read the log");
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_for_returns_the_first_ok() {
        let mut polls = 0;
        let value = wait_for(Duration::from_secs(5), "the third poll", || {
            polls += 1;
            std::future::ready(if polls == 3 { Ok(polls) } else { Err(polls) })
        })
        .await;
        assert_eq!(value, 3);
    }

    #[tokio::test]
    async fn try_wait_for_polls_at_its_pace_and_gives_up_with_the_last_answer() {
        let deadline = Deadline::after(Duration::from_millis(220), "a poll that never holds");
        let mut polls = 0;
        let timed_out = try_wait_for(&deadline, Duration::from_millis(50), || {
            polls += 1;
            std::future::ready(Err::<(), _>(polls))
        })
        .await
        .unwrap_err();
        assert!(
            polls <= 6,
            "polled {polls} times in 220 ms at one poll per 50 ms"
        );
        assert_eq!(
            timed_out.to_string(),
            format!(
                "timed out after 220ms waiting for a poll that never holds; last seen: {polls}"
            )
        );
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for the impossible; last seen: the check did not hold")]
    async fn eventually_names_what_it_waited_for() {
        eventually(Duration::from_millis(50), "the impossible", || false).await;
    }

    #[tokio::test]
    async fn a_log_watch_finds_a_line_and_keeps_the_whole_text() {
        let (mut writer, reader) = tokio::io::duplex(64);
        let watch = LogWatch::new(reader);
        let writing = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            writer.write_all(b"starting\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            writer.write_all(b"ready on 7\nbye\n").await.unwrap();
        });
        let line = watch.wait_for_line(Duration::from_secs(5), "ready").await;
        assert_eq!(line, "ready on 7");
        writing.await.unwrap();
        assert_eq!(watch.text().await, "starting\nready on 7\nbye\n");
    }
}
