//! Durations as text: `250ms`, `1.5s`, `1h30m`, `90`, `01:30`, `1:02:03`.
//!
//! The grammar, and which caller accepts which forms, is described in the
//! [crate documentation](crate#durations).

use std::fmt;
use std::time::Duration;

/// Which forms of duration a caller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forms {
    /// Numbers with units only (`250ms`, `1.5s`, `1h30m`), as the attribute takes them.
    UnitsOnly,
    /// Numbers with units, bare seconds (`90`, `1.5`) and clocks (`mm:ss`, `hh:mm:ss`),
    /// as the command line takes them.
    All,
}

/// Why a text is not a duration.
///
/// It displays as a lowercase reason naming the offending part of the text, such as
/// ``"`x` is not a unit (ms, s, m, h or d)"``, for the caller to place in a message that
/// names the whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Reason {
    Empty,
    TooLong,
    NotANumber(String),
    NumberExpected(String),
    NoUnit(String),
    NoUnitAtEnd(String),
    UnknownUnit(String),
    OutOfOrder { unit: String, after: String },
    ClockRefused(String),
    ClockFields,
    NotWhole { field: &'static str, text: String },
    MinutesOver59(String),
    SecondsOver59,
}

impl From<Reason> for Error {
    fn from(reason: Reason) -> Self {
        Self { reason }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::Empty => f.write_str("it is empty"),
            Reason::TooLong => f.write_str("it is too long"),
            Reason::NotANumber(number) => write!(f, "`{number}` is not a number"),
            Reason::NumberExpected(rest) => write!(f, "expected a number before `{rest}`"),
            Reason::NoUnit(number) => write!(f, "`{number}` has no unit"),
            Reason::NoUnitAtEnd(number) => write!(f, "`{number}` at the end has no unit"),
            Reason::UnknownUnit(unit) => write!(f, "`{unit}` is not a unit (ms, s, m, h or d)"),
            Reason::OutOfOrder { unit, after } => write!(
                f,
                "`{unit}` comes after `{after}`; write units from largest to smallest, once each"
            ),
            Reason::ClockRefused(text) => {
                write!(f, "`{text}` is a clock, and clocks are not accepted here")
            }
            Reason::ClockFields => f.write_str("a clock has two or three fields"),
            Reason::NotWhole { field, text } => {
                write!(f, "the {field} `{text}` are not a whole number")
            }
            Reason::MinutesOver59(minutes) => {
                write!(f, "the minutes `{minutes}` must be below 60")
            }
            Reason::SecondsOver59 => f.write_str("the seconds must be below 60"),
        }
    }
}

impl std::error::Error for Error {}

const SECOND: u128 = 1_000_000_000;
const MINUTE: u128 = 60 * SECOND;
const HOUR: u128 = 60 * MINUTE;

/// Each unit and its length in nanoseconds.
const UNITS: [(&str, u128); 5] = [
    ("ms", SECOND / 1_000),
    ("s", SECOND),
    ("m", MINUTE),
    ("h", HOUR),
    ("d", 24 * HOUR),
];

/// Reads a duration written in one of `forms`.
///
/// # Errors
/// When `text` is not a duration in those forms, or is too long for a [`Duration`]; the
/// error names the part of the text at fault.
pub fn parse(text: &str, forms: Forms) -> Result<Duration, Error> {
    let text = text.trim();
    let nanos = if text.is_empty() {
        Err(Reason::Empty.into())
    } else if text.contains(':') {
        match forms {
            Forms::All => clock(text),
            Forms::UnitsOnly => Err(Reason::ClockRefused(text.to_owned()).into()),
        }
    } else if text.chars().all(is_number_char) {
        let seconds = Decimal::read(text)?;
        match forms {
            Forms::All => seconds.times(SECOND),
            Forms::UnitsOnly => Err(Reason::NoUnit(text.to_owned()).into()),
        }
    } else {
        with_units(text)
    };
    to_duration(nanos?)
}

fn to_duration(nanos: u128) -> Result<Duration, Error> {
    let seconds = u64::try_from(nanos / SECOND).map_err(|_| Reason::TooLong)?;
    let rest = u32::try_from(nanos % SECOND).map_err(|_| Reason::TooLong)?;
    Ok(Duration::new(seconds, rest))
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || c == '.'
}

/// Splits `text` before the first character that `ends` the part, or not at all.
fn split_before(text: &str, ends: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(ends).unwrap_or(text.len()))
}

/// A number as written: digits with at most one decimal point, which may lead but not
/// trail (`90`, `1.5`, `.5`).
struct Decimal<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> Decimal<'a> {
    fn read(number: &'a str) -> Result<Self, Error> {
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        let has_point = whole.len() < number.len();
        let well_formed = digits(whole)
            && digits(fraction)
            && !(whole.is_empty() && fraction.is_empty())
            && !(has_point && fraction.is_empty());
        if !well_formed {
            return Err(Reason::NotANumber(number.to_owned()).into());
        }
        Ok(Self { whole, fraction })
    }

    /// The number times `per_unit` nanoseconds, exactly, less what lies below a whole
    /// nanosecond.
    fn times(&self, per_unit: u128) -> Result<u128, Error> {
        let whole: u128 = if self.whole.is_empty() {
            0
        } else {
            self.whole.parse().map_err(|_| Reason::TooLong)?
        };
        // The fraction's digits multiplied by `per_unit` from the last one up, as on
        // paper: what carries out past the decimal point is the whole nanoseconds, and
        // the carry never reaches `per_unit`, so any number of digits is exact.
        let fraction = self.fraction.bytes().rev().fold(0, |carry, digit| {
            (u128::from(digit - b'0') * per_unit + carry) / 10
        });
        whole
            .checked_mul(per_unit)
            .and_then(|nanos| nanos.checked_add(fraction))
            .ok_or_else(|| Reason::TooLong.into())
    }
}

fn unit(name: &str) -> Option<u128> {
    UNITS
        .iter()
        .find(|(unit, _)| unit.eq_ignore_ascii_case(name))
        .map(|&(_, nanos)| nanos)
}

/// `250ms`, `1h30m`, `1d 2h`: number-unit parts, each unit at most once, largest first.
fn with_units(text: &str) -> Result<u128, Error> {
    let mut total: u128 = 0;
    let mut previous: Option<(&str, u128)> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let (digits, after) = split_before(rest, |c| !is_number_char(c));
        if digits.is_empty() {
            return Err(Reason::NumberExpected(rest.to_owned()).into());
        }
        let number = Decimal::read(digits)?;
        // A unit is the letters after the number; anything else there is reported whole,
        // up to the next number or space, as the unit written.
        let after = after.trim_start();
        let (name, after) = match split_before(after, |c| !c.is_alphabetic()) {
            ("", _) => split_before(after, |c| is_number_char(c) || c.is_whitespace()),
            letters => letters,
        };
        if name.is_empty() {
            return Err(if after.is_empty() {
                Reason::NoUnitAtEnd(digits.to_owned())
            } else {
                Reason::NoUnit(digits.to_owned())
            }
            .into());
        }
        let per_unit = unit(name).ok_or_else(|| Reason::UnknownUnit(name.to_owned()))?;
        if let Some((last, last_nanos)) = previous
            && per_unit >= last_nanos
        {
            return Err(Reason::OutOfOrder {
                unit: name.to_owned(),
                after: last.to_owned(),
            }
            .into());
        }
        previous = Some((name, per_unit));
        total = total
            .checked_add(number.times(per_unit)?)
            .ok_or(Reason::TooLong)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// `mm:ss` or `hh:mm:ss`; the seconds may have a fraction.
fn clock(text: &str) -> Result<u128, Error> {
    let fields: Vec<&str> = text.split(':').collect();
    let (hours, minutes, seconds) = match fields.as_slice() {
        [minutes, seconds] => ("0", *minutes, *seconds),
        [hours, minutes, seconds] => (*hours, *minutes, *seconds),
        _ => return Err(Reason::ClockFields.into()),
    };
    let whole = |text: &str, field: &'static str| -> Result<u128, Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Reason::NotWhole {
                field,
                text: text.to_owned(),
            }
            .into());
        }
        text.parse().map_err(|_| Reason::TooLong.into())
    };
    let hours_count = whole(hours, "hours")?;
    let minutes_count = whole(minutes, "minutes")?;
    if fields.len() == 3 && minutes_count >= 60 {
        return Err(Reason::MinutesOver59(minutes.to_owned()).into());
    }
    let seconds = Decimal::read(seconds)?.times(SECOND)?;
    if seconds >= MINUTE {
        return Err(Reason::SecondsOver59.into());
    }
    hours_count
        .checked_mul(HOUR)
        .zip(minutes_count.checked_mul(MINUTE))
        .and_then(|(hours, minutes)| hours.checked_add(minutes))
        .and_then(|nanos| nanos.checked_add(seconds))
        .ok_or_else(|| Reason::TooLong.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [Forms; 2] = [Forms::UnitsOnly, Forms::All];

    fn ok(text: &str, forms: Forms) -> Duration {
        parse(text, forms).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn reason(text: &str, forms: Forms) -> String {
        match parse(text, forms) {
            Ok(duration) => panic!("{text}: read as {duration:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn numbers_with_units_are_read_by_both_forms() {
        for forms in BOTH {
            let ok = |text: &str| ok(text, forms);
            assert_eq!(ok("250ms"), Duration::from_millis(250));
            assert_eq!(ok("100ms"), Duration::from_millis(100));
            assert_eq!(ok("30s"), Duration::from_secs(30));
            assert_eq!(ok("90s"), Duration::from_secs(90));
            assert_eq!(ok("1.5s"), Duration::from_millis(1500));
            assert_eq!(ok(".5s"), Duration::from_millis(500));
            assert_eq!(ok("1m"), Duration::from_mins(1));
            assert_eq!(ok("5m"), Duration::from_mins(5));
            assert_eq!(ok("10m"), Duration::from_mins(10));
            assert_eq!(ok("1h"), Duration::from_hours(1));
            assert_eq!(ok("2h"), Duration::from_hours(2));
            assert_eq!(ok("1d"), Duration::from_hours(24));
            assert_eq!(ok("1h30m"), Duration::from_mins(90));
            assert_eq!(ok("1h 30m 15s"), Duration::from_secs(5_415));
            assert_eq!(ok("1 h 30 m"), Duration::from_mins(90));
            assert_eq!(ok("1d2h3m4s5ms"), Duration::new(93_784, 5_000_000));
            assert_eq!(ok(" 5S "), Duration::from_secs(5));
            assert_eq!(ok("1H30M"), Duration::from_mins(90));
            assert_eq!(ok("0s"), Duration::ZERO);
        }
    }

    #[test]
    fn bare_seconds_and_clocks_are_read_by_all_forms() {
        let ok = |text: &str| ok(text, Forms::All);
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("01:30"), Duration::from_secs(90));
        assert_eq!(ok("90:00"), Duration::from_mins(90));
        assert_eq!(ok("1:02:03"), Duration::from_secs(3723));
        assert_eq!(ok("00:00:01.25"), Duration::from_millis(1250));
        assert_eq!(ok("100:59:59"), Duration::from_secs(363_599));
    }

    #[test]
    fn units_only_refuses_bare_seconds_and_clocks() {
        let reason = |text: &str| reason(text, Forms::UnitsOnly);
        assert_eq!(reason("30"), "`30` has no unit");
        assert_eq!(reason(" 1.5 "), "`1.5` has no unit");
        assert_eq!(reason("1.2.3"), "`1.2.3` is not a number");
        assert_eq!(
            reason("01:30"),
            "`01:30` is a clock, and clocks are not accepted here"
        );
        assert_eq!(
            reason("1:02:03"),
            "`1:02:03` is a clock, and clocks are not accepted here"
        );
    }

    #[test]
    fn fractions_are_exact() {
        for forms in BOTH {
            let ok = |text: &str| ok(text, forms);
            assert_eq!(ok("0.1s"), Duration::from_millis(100));
            assert_eq!(ok("0.5ms"), Duration::from_micros(500));
            assert_eq!(ok("0.001ms"), Duration::from_micros(1));
            assert_eq!(ok("1.25m"), Duration::from_secs(75));
            assert_eq!(ok("0.1h"), Duration::from_mins(6));
            // Below a nanosecond is dropped, not rounded into a float's neighbour.
            assert_eq!(ok("0.0000000019s"), Duration::from_nanos(1));
            assert_eq!(ok("1.0000000019s"), Duration::new(1, 1));
            // 59.99999999994 seconds: every digit counts, even those each worth less
            // than a nanosecond.
            assert_eq!(ok("0.99999999999m"), Duration::new(59, 999_999_999));
            assert_eq!(
                ok("1.0000000000000000000000000000000000000000001d"),
                Duration::from_hours(24)
            );
        }
        assert_eq!(ok("0.3", Forms::All), Duration::from_millis(300));
    }

    #[test]
    fn errors_name_the_part_at_fault() {
        for forms in BOTH {
            let reason = |text: &str| reason(text, forms);
            assert_eq!(reason(""), "it is empty");
            assert_eq!(reason("  "), "it is empty");
            assert_eq!(reason("5x"), "`x` is not a unit (ms, s, m, h or d)");
            assert_eq!(reason("5ns"), "`ns` is not a unit (ms, s, m, h or d)");
            assert_eq!(reason("5%"), "`%` is not a unit (ms, s, m, h or d)");
            assert_eq!(
                reason("5 parsecs"),
                "`parsecs` is not a unit (ms, s, m, h or d)"
            );
            assert_eq!(reason("m"), "expected a number before `m`");
            assert_eq!(reason("ms"), "expected a number before `ms`");
            assert_eq!(reason("-5s"), "expected a number before `-5s`");
            assert_eq!(reason("1h-5m"), "expected a number before `-5m`");
            assert_eq!(reason("5m30"), "`30` at the end has no unit");
            assert_eq!(reason("1h30"), "`30` at the end has no unit");
            assert_eq!(reason("5 30s"), "`5` has no unit");
            assert_eq!(
                reason("30s5m"),
                "`m` comes after `s`; write units from largest to smallest, once each"
            );
            assert_eq!(
                reason("1m1m"),
                "`m` comes after `m`; write units from largest to smallest, once each"
            );
            assert_eq!(reason("1..5s"), "`1..5` is not a number");
            assert_eq!(reason("1.2.3s"), "`1.2.3` is not a number");
            assert_eq!(reason("5.s"), "`5.` is not a number");
        }
        let reason = |text: &str| reason(text, Forms::All);
        assert_eq!(reason("5."), "`5.` is not a number");
        assert_eq!(reason("."), "`.` is not a number");
        assert_eq!(reason("1:2:3:4"), "a clock has two or three fields");
        assert_eq!(reason("1:60:00"), "the minutes `60` must be below 60");
        assert_eq!(reason("1:75"), "the seconds must be below 60");
        assert_eq!(reason("a:10"), "the minutes `a` are not a whole number");
        assert_eq!(reason("1::10"), "the minutes `` are not a whole number");
        assert_eq!(
            reason("1:1.5:10"),
            "the minutes `1.5` are not a whole number"
        );
        assert_eq!(reason("x:10:10"), "the hours `x` are not a whole number");
        assert_eq!(reason("1:5.s"), "`5.s` is not a number");
    }

    #[test]
    fn too_long_is_an_error_not_a_wrap() {
        for forms in BOTH {
            let reason = |text: &str| reason(text, forms);
            assert_eq!(reason("99999999999999999999999d"), "it is too long");
            assert_eq!(reason("300000000000000000000000d"), "it is too long");
            assert_eq!(reason("18446744073709551616s"), "it is too long");
            assert_eq!(reason(&format!("{}s", "9".repeat(60))), "it is too long");
            assert_eq!(reason("213503982334601d 8h"), "it is too long");
            assert_eq!(ok("18446744073709551615.999999999s", forms), Duration::MAX);
        }
        let reason = |text: &str| reason(text, Forms::All);
        assert_eq!(reason("18446744073709551616"), "it is too long");
        assert_eq!(reason(&format!("{}:00:00", u128::MAX)), "it is too long");
        assert_eq!(reason(&format!("{}0:00:00", u128::MAX)), "it is too long");
        assert_eq!(reason(&format!("{}:00", u128::MAX)), "it is too long");
    }
}
