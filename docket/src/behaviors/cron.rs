//! Cron schedules: the next wall-clock time matching a 5-field expression (or
//! `@yearly`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`) in an IANA time
//! zone, across daylight-saving changes.
//!
//! In a spring-forward gap a time that does not exist runs at the first instant after
//! the gap; in a fall-back overlap a time that happens twice runs once, the first time.

use std::str::FromStr;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// The first time strictly after `after` matching `expression` in `time_zone` (UTC
/// when `None`).
///
/// # Errors
/// A message naming the expression or time zone that cannot be used.
pub(crate) fn next_after(
    expression: &str,
    time_zone: Option<&str>,
    after: SystemTime,
) -> Result<SystemTime, String> {
    let zone = match time_zone {
        None => Tz::UTC,
        Some(name) => Tz::from_str(name)
            .map_err(|_| format!("`{name}` is not an IANA time zone (such as `Europe/Paris`)"))?,
    };
    let pattern = if expression.trim().eq_ignore_ascii_case("@midnight") {
        "@daily"
    } else {
        expression.trim()
    };
    let cron = Cron::new(pattern)
        .parse()
        .map_err(|error| format!("invalid cron expression `{expression}`: {error}"))?;
    let start = DateTime::<Utc>::from(after).with_timezone(&zone);
    let next = cron
        .find_next_occurrence(&start, false)
        .map_err(|error| format!("no time matches `{expression}` after {start}: {error}"))?;
    Ok(SystemTime::from(next.with_timezone(&Utc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        SystemTime::from(
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc),
        )
    }

    fn next(expression: &str, zone: Option<&str>, after: &str) -> String {
        let next = next_after(expression, zone, at(after)).unwrap();
        DateTime::<Utc>::from(next).to_rfc3339()
    }

    #[test]
    fn utc_and_shorthands() {
        assert_eq!(
            next("*/15 * * * *", None, "2026-01-01T10:07:00Z"),
            "2026-01-01T10:15:00+00:00"
        );
        assert_eq!(
            next("@hourly", None, "2026-01-01T10:00:00Z"),
            "2026-01-01T11:00:00+00:00"
        );
        assert_eq!(
            next("@daily", None, "2026-01-01T10:00:00Z"),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next("@midnight", None, "2026-01-01T10:00:00Z"),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", None, "2026-01-01T10:00:00Z"),
            "2026-01-04T00:00:00+00:00"
        );
        assert_eq!(
            next("@monthly", None, "2026-01-01T10:00:00Z"),
            "2026-02-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@yearly", None, "2026-01-01T10:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        // Strictly after: a time that matches is not its own next time.
        assert_eq!(
            next("0 9 * * *", None, "2026-01-01T09:00:00Z"),
            "2026-01-02T09:00:00+00:00"
        );
    }

    #[test]
    fn new_york_across_both_dst_changes() {
        let ny = Some("America/New_York");
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
        assert_eq!(
            next("30 2 * * *", ny, "2026-03-07T17:00:00Z"),
            "2026-03-08T07:00:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", ny, "2026-03-08T07:00:00Z"),
            "2026-03-09T06:30:00+00:00"
        );
        // A weekday 09:00 keeps its local time: 14:00Z in winter, 13:00Z in summer.
        assert_eq!(
            next("0 9 * * 1-5", ny, "2026-03-06T15:00:00Z"),
            "2026-03-09T13:00:00+00:00"
        );
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice, runs once.
        assert_eq!(
            next("30 1 * * *", ny, "2026-10-31T16:00:00Z"),
            "2026-11-01T05:30:00+00:00"
        );
        assert_eq!(
            next("30 1 * * *", ny, "2026-11-01T05:30:00Z"),
            "2026-11-02T06:30:00+00:00"
        );
    }

    #[test]
    fn paris_across_both_dst_changes() {
        let paris = Some("Europe/Paris");
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
        assert_eq!(
            next("0 9 * * 1-5", paris, "2026-03-27T10:00:00Z"),
            "2026-03-30T07:00:00+00:00"
        );
        assert_eq!(
            next("15 2 * * *", paris, "2026-03-28T12:00:00Z"),
            "2026-03-29T01:00:00+00:00"
        );
        // 2026-10-25: 03:00 CEST falls back to 02:00 CET.
        assert_eq!(
            next("0 3 * * *", paris, "2026-10-24T12:00:00Z"),
            "2026-10-25T02:00:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", paris, "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", paris, "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let error = next_after("0 9 * *", None, SystemTime::now()).unwrap_err();
        assert!(error.contains("`0 9 * *`"), "{error}");
        let error = next_after("0 9 * * *", Some("Mars/Olympus"), SystemTime::now()).unwrap_err();
        assert!(error.contains("`Mars/Olympus`"), "{error}");
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_cron_expression_or_zone_panics_and_every_error_names_it(
            expression in prop_oneof![".*", "([0-9*/,-]{1,4} ){4,6}[0-9A-Z*?/#L,-]{1,5}", "@[a-z]{0,9}"],
            zone in prop::option::of(prop_oneof![".*", "(Europe|America|Asia)/[A-Za-z_]{0,10}"]),
        ) {
            let after = SystemTime::UNIX_EPOCH + std::time::Duration::from_hours(24 * 365 * 50);
            if let Err(error) = next_after(&expression, zone.as_deref(), after) {
                let names_it = error.contains(&format!("`{expression}`"))
                    || zone.as_ref().is_some_and(|zone| error.contains(&format!("`{zone}`")));
                prop_assert!(names_it, "{error}");
            }
        }
    }
}
