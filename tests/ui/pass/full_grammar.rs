use std::time::Duration;

use docket::Task;
use docket::task::{RetryPolicy, Schedule};

#[docket::task(name = "billing.charge", retry = Exponential(5, 30s..10m), timeout = "2m",
    concurrency(max = 2, arg = customer_id, scope = "billing"), debounce = 5s,
    cooldown = "1m", rate_limit(10, per = "1m", drop, arg = customer_id))]
async fn charge(customer_id: String, cents: u64) {}

#[docket::task(retry = Fixed(3, 1.5s))]
async fn fixed() {}

#[docket::task(retry = 4)]
async fn immediate() {}

#[docket::task(retry = Forever("1h30m"))]
async fn forever() {}

#[docket::task(retry = Exponential(forever, 1s..1m))]
async fn exponential_forever() {}

#[docket::task(perpetual = "1m", automatic)]
async fn sweep() {}

#[docket::task(perpetual(every = 250ms, automatic))]
async fn tick() {}

#[docket::task(cron(expr = "0 9 * * 1-5", tz = "Europe/Paris"))]
async fn morning_report() {}

#[docket::task(cron = "@hourly")]
async fn hourly() {}

fn main() {
    let options = <Charge as Task>::OPTIONS;
    assert_eq!(<Charge as Task>::NAME, "billing.charge");
    assert_eq!(
        options.retry,
        RetryPolicy::Exponential {
            attempts: Some(5),
            minimum: Duration::from_secs(30),
            maximum: Duration::from_secs(600)
        }
    );
    assert_eq!(options.timeout, Some(Duration::from_secs(120)));
    assert_eq!(options.concurrency.unwrap().arg, Some("customer_id"));
    assert_eq!(options.debounce, Some(Duration::from_secs(5)));
    assert!(options.rate_limit.unwrap().drop);
    assert_eq!(<Fixed as Task>::OPTIONS.retry, RetryPolicy::Fixed { attempts: Some(3), delay: Duration::from_millis(1500) });
    assert_eq!(<Immediate as Task>::OPTIONS.retry.attempts(), Some(4));
    assert_eq!(<Forever as Task>::OPTIONS.retry.attempts(), None);
    assert_eq!(<ExponentialForever as Task>::OPTIONS.retry.attempts(), None);
    assert_eq!(<Sweep as Task>::OPTIONS.schedule, Some(Schedule::Every(Duration::from_secs(60))));
    assert!(<Sweep as Task>::OPTIONS.automatic);
    assert!(<Tick as Task>::OPTIONS.automatic);
    assert_eq!(
        <MorningReport as Task>::OPTIONS.schedule,
        Some(Schedule::Cron { expression: "0 9 * * 1-5", time_zone: Some("Europe/Paris") })
    );
    assert!(<Hourly as Task>::OPTIONS.automatic, "cron tasks are automatic");
    let _ = (Charge::new("c".into(), 1), Fixed::new(), Immediate::new(), Forever::new());
    let _ = (ExponentialForever::new(), Sweep::new(), Tick::new(), MorningReport::new(), Hourly::new());
}
