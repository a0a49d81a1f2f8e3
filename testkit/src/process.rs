//! Signals to processes this test started.

use std::io;
use std::process::{Command, Stdio};

/// Sends `signal` (a name as `kill` takes it: `TERM`, `STOP`, `CONT`, `KILL`) to the
/// process `pid`, which must be one this program started.
///
/// # Errors
/// When `kill` cannot be run or fails (say, the process is gone).
pub fn signal(pid: u32, signal: &str) -> io::Result<()> {
    // `kill -SIG PID`: std can only send SIGKILL, and this crate has no unsafe code.
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "`kill -{signal} {pid}` exited with {status}"
        )))
    }
}
