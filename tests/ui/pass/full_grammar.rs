//! Every option of the attribute, in every form, and the options it declares.

use std::time::Duration;

use docket::task::{ConcurrencyLimit, RateLimit, RetryPolicy, Schedule, TaskOptions};
use docket::{Execution, Task};

#[docket::task(
    name = "grammar.everything",
    retry = Exponential(5, 30s..10m),
    timeout = "2m",
    concurrency(max = 2, arg = customer_id, scope = "billing"),
    debounce = 250ms,
    cooldown = "1m",
    rate_limit(10, per = "1m", drop, arg = customer_id),
)]
async fn everything(customer_id: u64, note: String) {
    let _ = (customer_id, note);
}

#[docket::task(retry = 3)]
async fn retry_count() {}

#[docket::task(retry = Fixed(4, 1.5s))]
async fn retry_fixed() {}

#[docket::task(retry = Forever(5s))]
async fn retry_forever() {}

#[docket::task(retry = Exponential(forever, 1s..1m))]
async fn retry_exponential_forever() {}

#[docket::task(perpetual = "1h30m")]
async fn perpetual_with_data(region: String) {
    let _ = region;
}

#[docket::task(perpetual(every = 10m, automatic))]
async fn perpetual_nested(execution: Execution) {
    let _ = execution;
}

#[docket::task(automatic, perpetual = 1d)]
async fn perpetual_flag() {}

#[docket::task(cron = "0 9 * * 1-5")]
async fn cron_plain() {}

#[docket::task(cron(expr = "@hourly", tz = "Europe/Paris"), timeout = 0.5s)]
async fn cron_nested() {}

#[docket::task(concurrency(max = 1), rate_limit(3, per = 2h))]
async fn limited() {}

const fn minutes(count: u64) -> Duration {
    Duration::from_secs(count * 60)
}

fn options<T: Task>() -> TaskOptions {
    T::OPTIONS
}

fn main() {
    let everything = options::<Everything>();
    assert_eq!(<Everything as Task>::NAME, "grammar.everything");
    assert_eq!(
        everything.retry,
        RetryPolicy::Exponential {
            attempts: Some(5),
            minimum: Duration::from_secs(30),
            maximum: minutes(10),
        }
    );
    assert_eq!(everything.timeout, Some(minutes(2)));
    assert_eq!(
        everything.concurrency,
        Some(ConcurrencyLimit {
            max: 2,
            arg: Some("customer_id"),
            scope: Some("billing"),
        })
    );
    assert_eq!(everything.debounce, Some(Duration::from_millis(250)));
    assert_eq!(everything.cooldown, Some(minutes(1)));
    assert_eq!(
        everything.rate_limit,
        Some(RateLimit {
            limit: 10,
            per: minutes(1),
            drop: true,
            arg: Some("customer_id"),
        })
    );
    assert_eq!(everything.schedule, None);
    assert!(!everything.automatic);

    let fixed = |attempts, delay| RetryPolicy::Fixed { attempts, delay };
    assert_eq!(
        options::<RetryCount>().retry,
        fixed(Some(3), Duration::ZERO)
    );
    assert_eq!(
        options::<RetryFixed>().retry,
        fixed(Some(4), Duration::from_millis(1500))
    );
    assert_eq!(
        options::<RetryForever>().retry,
        fixed(None, Duration::from_secs(5))
    );
    assert_eq!(
        options::<RetryExponentialForever>().retry,
        RetryPolicy::Exponential {
            attempts: None,
            minimum: Duration::from_secs(1),
            maximum: minutes(1),
        }
    );

    let perpetual = options::<PerpetualWithData>();
    assert_eq!(perpetual.schedule, Some(Schedule::Every(minutes(90))));
    assert!(!perpetual.automatic);
    let _ = PerpetualWithData::new("eu".to_owned());

    let nested = options::<PerpetualNested>();
    assert_eq!(nested.schedule, Some(Schedule::Every(minutes(10))));
    assert!(nested.automatic);
    let flag = options::<PerpetualFlag>();
    assert_eq!(flag.schedule, Some(Schedule::Every(minutes(24 * 60))));
    assert!(flag.automatic);

    let cron = options::<CronPlain>();
    assert_eq!(
        cron.schedule,
        Some(Schedule::Cron {
            expression: "0 9 * * 1-5",
            time_zone: None,
        })
    );
    assert!(cron.automatic, "cron tasks are automatic");
    let cron = options::<CronNested>();
    assert_eq!(
        cron.schedule,
        Some(Schedule::Cron {
            expression: "@hourly",
            time_zone: Some("Europe/Paris"),
        })
    );
    assert_eq!(cron.timeout, Some(Duration::from_millis(500)));

    let limited = options::<Limited>();
    assert_eq!(
        limited.concurrency.map(|limit| (limit.max, limit.arg)),
        Some((1, None))
    );
    assert_eq!(
        limited.rate_limit.map(|limit| (limit.per, limit.drop)),
        Some((minutes(120), false))
    );
    assert_eq!(limited.retry, RetryPolicy::Never);
}
