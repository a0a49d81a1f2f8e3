//! The options a task declares in its `#[docket::task(...)]` attribute.
//!
//! The macro turns the attribute into a `const` [`TaskOptions`] value, so every option
//! is known to the worker through the task's registration, before any call is made.

use std::time::Duration;

/// How a failed run is retried (`retry = ...`).
///
/// `attempts` counts every run, the first one included; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// One attempt: a failure is final.
    Never,
    /// `retry = N` or `retry = Fixed(N, 5s)` or `retry = Forever(5s)`: a fixed delay.
    Fixed {
        /// Attempts in total, or `None` for unlimited.
        attempts: Option<u32>,
        /// Delay between attempts.
        delay: Duration,
    },
    /// `retry = Exponential(N, 30s..10m)`: delay after attempt n = min(min·2^(n-1), max).
    Exponential {
        /// Attempts in total, or `None` for unlimited.
        attempts: Option<u32>,
        /// Delay after the first attempt.
        minimum: Duration,
        /// Largest delay.
        maximum: Duration,
    },
}

impl RetryPolicy {
    /// Attempts in total (the first run included), or `None` for unlimited.
    pub const fn attempts(&self) -> Option<u32> {
        match self {
            Self::Never => Some(1),
            Self::Fixed { attempts, .. } | Self::Exponential { attempts, .. } => *attempts,
        }
    }

    /// The delay before the attempt that follows attempt `attempt` (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        match *self {
            Self::Never => Duration::ZERO,
            Self::Fixed { delay, .. } => delay,
            Self::Exponential {
                minimum, maximum, ..
            } => {
                let exponent = attempt.saturating_sub(1).min(63);
                let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
                let nanos = minimum.as_nanos().saturating_mul(u128::from(factor));
                let max = maximum.as_nanos();
                Duration::from_nanos(u64::try_from(nanos.min(max)).unwrap_or(u64::MAX))
            }
        }
    }
}

/// A recurring schedule: `perpetual = "1m"` or `cron = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schedule {
    /// Run again `every` after each run started (start-to-start cadence).
    Every(Duration),
    /// Run at the next time matching a cron expression.
    Cron {
        /// A 5-field expression or `@hourly`, `@daily`, ...
        expression: &'static str,
        /// An IANA time zone name; `None` is UTC.
        time_zone: Option<&'static str>,
    },
}

/// `concurrency(max = N, arg = field, scope = "...")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    /// Concurrent runs allowed.
    pub max: u32,
    /// Limit per value of this argument instead of per task.
    pub arg: Option<&'static str>,
    /// A scope name shared between tasks.
    pub scope: Option<&'static str>,
}

/// `rate_limit(N, per = "1m")` / `rate_limit(N, per = "1m", drop)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Runs allowed per window.
    pub limit: u32,
    /// The sliding window.
    pub per: Duration,
    /// Drop calls over the limit instead of delaying them.
    pub drop: bool,
    /// Limit per value of this argument instead of per task.
    pub arg: Option<&'static str>,
}

/// Everything a task declared in its attribute.
///
/// Built with `const` methods so the macro can place it in a static registration:
///
/// ```
/// use std::time::Duration;
/// use docket::task::{RetryPolicy, TaskOptions};
///
/// const OPTIONS: TaskOptions = TaskOptions::new()
///     .retry(RetryPolicy::Fixed { attempts: Some(3), delay: Duration::from_secs(5) })
///     .timeout(Duration::from_secs(30));
/// assert_eq!(OPTIONS.retry.attempts(), Some(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskOptions {
    /// `retry = ...`
    pub retry: RetryPolicy,
    /// `timeout = "..."`
    pub timeout: Option<Duration>,
    /// `perpetual = ...` or `cron = ...`
    pub schedule: Option<Schedule>,
    /// `automatic`: workers seed the task at startup.
    pub automatic: bool,
    /// `concurrency(...)`
    pub concurrency: Option<ConcurrencyLimit>,
    /// `debounce = "..."`
    pub debounce: Option<Duration>,
    /// `cooldown = "..."`
    pub cooldown: Option<Duration>,
    /// `rate_limit(...)`
    pub rate_limit: Option<RateLimit>,
}

impl TaskOptions {
    /// No options: one attempt, no timeout, no schedule, no admission control.
    pub const fn new() -> Self {
        Self {
            retry: RetryPolicy::Never,
            timeout: None,
            schedule: None,
            automatic: false,
            concurrency: None,
            debounce: None,
            cooldown: None,
            rate_limit: None,
        }
    }

    /// Sets the retry policy.
    #[must_use]
    pub const fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the timeout.
    #[must_use]
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the recurring schedule.
    #[must_use]
    pub const fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = Some(schedule);
        self
    }

    /// Marks the task automatic (seeded by workers at startup).
    #[must_use]
    pub const fn automatic(mut self) -> Self {
        self.automatic = true;
        self
    }

    /// Sets the concurrency limit.
    #[must_use]
    pub const fn concurrency(mut self, limit: ConcurrencyLimit) -> Self {
        self.concurrency = Some(limit);
        self
    }

    /// Sets the debounce settle time.
    #[must_use]
    pub const fn debounce(mut self, settle: Duration) -> Self {
        self.debounce = Some(settle);
        self
    }

    /// Sets the cooldown window.
    #[must_use]
    pub const fn cooldown(mut self, window: Duration) -> Self {
        self.cooldown = Some(window);
        self
    }

    /// Sets the rate limit.
    #[must_use]
    pub const fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_delays_double_up_to_the_maximum() {
        let policy = RetryPolicy::Exponential {
            attempts: Some(5),
            minimum: Duration::from_secs(30),
            maximum: Duration::from_mins(10),
        };
        let delays: Vec<u64> = (1..=7).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(policy.attempts(), Some(5));
    }

    #[test]
    fn exponential_delay_saturates_instead_of_overflowing() {
        let policy = RetryPolicy::Exponential {
            attempts: None,
            minimum: Duration::from_secs(1),
            maximum: Duration::from_mins(1),
        };
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_mins(1));
    }

    #[test]
    fn never_means_a_single_attempt() {
        assert_eq!(RetryPolicy::Never.attempts(), Some(1));
    }
}
