//! Durations on the command line and in `DOCKET_*` variables.
//!
//! Every form the production guide uses is accepted: bare seconds (`90`, `1.5`), numbers
//! with units, alone or chained (`250ms`, `90s`, `5m`, `1h30m`, `1d`), and clock forms
//! (`mm:ss`, `hh:mm:ss`). Arithmetic is exact to the nanosecond.

use std::time::Duration;

/// The accepted forms, appended to every error.
const FORMS: &str = "use seconds (`90`, `1.5`), a number with a unit \
    (`250ms`, `90s`, `5m`, `2h`, `1d`), units chained (`1h30m`) or a clock \
    (`mm:ss`, `hh:mm:ss`)";

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a duration written in any of the accepted forms.
///
/// # Errors
/// A message naming the text and listing the accepted forms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let nanos = if trimmed.is_empty() {
        Err("it is empty".to_owned())
    } else if trimmed.contains(':') {
        clock(trimmed)
    } else if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        number(trimmed, NANOS_PER_SECOND)
    } else {
        with_units(trimmed)
    };
    nanos
        .and_then(to_duration)
        .map_err(|reason| format!("invalid duration `{text}`: {reason}; {FORMS}"))
}

fn to_duration(nanos: u128) -> Result<Duration, String> {
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| "it is too long")?;
    let rest = u32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| "it is too long")?;
    Ok(Duration::new(seconds, rest))
}

/// `number` (digits with at most one decimal point) times `per_unit` nanoseconds.
fn number(number: &str, per_unit: u128) -> Result<u128, String> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match (whole.is_empty(), fraction.is_empty()) {
        (false, true) => digits(whole) && !number.ends_with('.'),
        (true, false) => digits(fraction),
        (false, false) => digits(whole) && digits(fraction),
        (true, true) => false,
    };
    if !well_formed {
        return Err(format!("`{number}` is not a number"));
    }
    let too_long = || "it is too long".to_owned();
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_long())?
    };
    let mut nanos = whole.checked_mul(per_unit).ok_or_else(too_long)?;
    // Each fraction digit is worth a tenth of the one before; digits below a nanosecond
    // are dropped.
    let mut place = per_unit;
    for digit in fraction.bytes() {
        place /= 10;
        if place == 0 {
            break;
        }
        nanos = nanos
            .checked_add(u128::from(digit - b'0') * place)
            .ok_or_else(too_long)?;
    }
    Ok(nanos)
}

fn unit(unit: &str) -> Option<u128> {
    Some(match unit {
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// `250ms`, `1h30m`, `1d2h`: number-unit parts, each unit at most once, largest first.
fn with_units(text: &str) -> Result<u128, String> {
    let mut total: u128 = 0;
    let mut rest = text;
    let mut previous: Option<(u128, &str)> = None;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(number_end);
        if digits.is_empty() {
            return Err(format!("expected a number before `{rest}`"));
        }
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (name, next) = after.split_at(unit_end);
        if name.is_empty() {
            return Err(format!("`{digits}` at the end has no unit"));
        }
        let per_unit = unit(&name.to_ascii_lowercase())
            .ok_or_else(|| format!("`{name}` is not a unit (ms, s, m, h or d)"))?;
        if let Some((last, last_name)) = previous
            && per_unit >= last
        {
            return Err(format!(
                "`{name}` comes after `{last_name}`; write units from largest to smallest, once each"
            ));
        }
        previous = Some((per_unit, name));
        total = total
            .checked_add(number(digits, per_unit)?)
            .ok_or("it is too long")?;
        rest = next;
    }
    Ok(total)
}

/// `mm:ss` or `hh:mm:ss`; the seconds may have a fraction.
fn clock(text: &str) -> Result<u128, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (hours, minutes, seconds) = match parts.as_slice() {
        [m, s] => ("0", *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return Err("a clock has two or three fields".to_owned()),
    };
    let integer = |field: &str, what: &str| -> Result<u128, String> {
        if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("the {what} `{field}` are not a whole number"));
        }
        field.parse().map_err(|_| "it is too long".to_owned())
    };
    let hours = integer(hours, "hours")?;
    let minutes = integer(minutes, "minutes")?;
    if parts.len() == 3 && minutes >= 60 {
        return Err(format!("the minutes `{minutes}` must be below 60"));
    }
    let seconds = number(seconds, NANOS_PER_SECOND)?;
    if seconds >= 60 * NANOS_PER_SECOND {
        return Err("the seconds must be below 60".to_owned());
    }
    (hours * 60 + minutes)
        .checked_mul(60 * NANOS_PER_SECOND)
        .and_then(|n| n.checked_add(seconds))
        .ok_or_else(|| "it is too long".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_form_of_the_guide() {
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("90s"), Duration::from_secs(90));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("100ms"), Duration::from_millis(100));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("5m"), Duration::from_mins(5));
        assert_eq!(ok("10m"), Duration::from_mins(10));
        assert_eq!(ok("1h"), Duration::from_hours(1));
        assert_eq!(ok("1h30m"), Duration::from_mins(90));
        assert_eq!(ok("1d"), Duration::from_hours(24));
        assert_eq!(ok("1d2h3m4s5ms"), Duration::new(93_784, 5_000_000));
        assert_eq!(ok("01:30"), Duration::from_secs(90));
        assert_eq!(ok("90:00"), Duration::from_mins(90));
        assert_eq!(ok("1:02:03"), Duration::from_secs(3723));
        assert_eq!(ok("00:00:01.25"), Duration::from_millis(1250));
        assert_eq!(ok(" 5S "), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok(".5s"), Duration::from_millis(500));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(ok("0.1s"), Duration::from_millis(100));
        assert_eq!(ok("0.3"), Duration::from_millis(300));
        assert_eq!(ok("1.0000000019s"), Duration::new(1, 1));
        assert_eq!(ok("0.5ms"), Duration::from_micros(500));
    }

    #[test]
    fn errors_name_the_text_the_problem_and_the_forms() {
        let cases = [
            ("", "it is empty"),
            ("5x", "`x` is not a unit"),
            ("m", "expected a number before `m`"),
            ("5m30", "`30` at the end has no unit"),
            ("30s5m", "`m` comes after `s`"),
            ("1m1m", "`m` comes after `m`"),
            ("1..5s", "`1..5` is not a number"),
            ("5.", "`5.` is not a number"),
            ("-5s", "expected a number before `-5s`"),
            ("1:2:3:4", "two or three fields"),
            ("1:60:00", "minutes `60` must be below 60"),
            ("1:75", "seconds must be below 60"),
            ("a:10", "minutes `a` are not a whole number"),
            ("99999999999999999999999d", "too long"),
        ];
        for (text, reason) in cases {
            let error = parse_duration(text).unwrap_err();
            assert!(
                error.starts_with(&format!("invalid duration `{text}`: ")),
                "{text}: {error}"
            );
            assert!(error.contains(reason), "{text}: {error}");
            assert!(error.contains("`hh:mm:ss`"), "{text}: {error}");
        }
    }
}
