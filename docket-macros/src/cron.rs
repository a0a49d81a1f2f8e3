//! A compile-time check of cron expressions, so a typo fails the build rather than the
//! worker. The runtime's cron parser stays the authority on what a schedule means; this
//! only rejects what no parser would take.

/// The shorthands accepted in place of five fields.
pub(crate) const SHORTHANDS: [&str; 7] = [
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One of the five fields: its name, its range and, for months and weekdays, the names
/// that stand for numbers.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first number a name stands for (`JAN` = 1, `SUN` = 0).
    first_named: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        first_named: 0,
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
        first_named: 1,
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
        first_named: 0,
    },
];

const DAY_OF_MONTH: usize = 2;
const DAY_OF_WEEK: usize = 4;

/// Checks a cron expression: five whitespace-separated fields (minute, hour,
/// day-of-month, month, day-of-week) or one of the [`SHORTHANDS`].
///
/// # Errors
/// What is wrong, with the offending part in backticks.
pub(crate) fn check(expression: &str) -> Result<(), String> {
    let expression = expression.trim();
    if expression.starts_with('@') {
        return if SHORTHANDS.contains(&expression) {
            Ok(())
        } else {
            Err(format!(
                "`{expression}` is not a cron shorthand; use {}",
                crate::errors::choices(&SHORTHANDS)
            ))
        };
    }
    let parts: Vec<&str> = expression.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) or a shorthand \
             such as `@daily`, found {}",
            parts.len()
        ));
    }
    for (index, (part, field)) in parts.iter().zip(&FIELDS).enumerate() {
        for item in part.split(',') {
            check_item(item, index, field).map_err(|detail| {
                format!("the {} field `{part}` is invalid: {detail}", field.name)
            })?;
        }
    }
    Ok(())
}

/// One comma-separated item: `*`, `5`, `1-5`, `*/15`, `MON-FRI`, `L`, `15W`, `5#2`...
fn check_item(item: &str, index: usize, field: &Field) -> Result<(), String> {
    if item.is_empty() {
        return Err("it has an empty item".to_owned());
    }
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(step) if step >= 1 => {}
            _ => return Err(format!("`{step}` is not a step (a whole number from 1)")),
        }
    }
    if base == "*" || (base == "?" && matches!(index, DAY_OF_MONTH | DAY_OF_WEEK)) {
        return Ok(());
    }
    if step.is_none() && is_special(base, index, field)? {
        return Ok(());
    }
    match base.split_once('-') {
        Some((start, end)) => {
            let (start, end) = (value(start, field)?, value(end, field)?);
            if start > end {
                return Err(format!("the range `{base}` runs backwards"));
            }
        }
        None => {
            value(base, field)?;
        }
    }
    Ok(())
}

/// The "last" and "nearest weekday" forms: `L`, `LW`, `15W` in the day of the month,
/// `5L` (last Friday) and `5#2` (second Friday) in the day of the week.
fn is_special(base: &str, index: usize, field: &Field) -> Result<bool, String> {
    match index {
        DAY_OF_MONTH => {
            if base == "L" || base == "LW" {
                return Ok(true);
            }
            if let Some(day) = base.strip_suffix('W') {
                value(day, field)?;
                return Ok(true);
            }
        }
        DAY_OF_WEEK => {
            if let Some(day) = base.strip_suffix('L') {
                value(day, field)?;
                return Ok(true);
            }
            if let Some((day, nth)) = base.split_once('#') {
                value(day, field)?;
                if !matches!(nth.parse::<u32>(), Ok(1..=5)) {
                    return Err(format!("`#{nth}` is not a week of the month (1 to 5)"));
                }
                return Ok(true);
            }
        }
        _ => {}
    }
    Ok(false)
}

/// A number in the field's range, or a month or weekday name.
fn value(text: &str, field: &Field) -> Result<u32, String> {
    if let Ok(number) = text.parse::<u32>() {
        return if (field.min..=field.max).contains(&number) {
            Ok(number)
        } else {
            Err(format!(
                "`{number}` is out of range ({} to {})",
                field.min, field.max
            ))
        };
    }
    let upper = text.to_ascii_uppercase();
    field
        .names
        .iter()
        .zip(field.first_named..)
        .find_map(|(name, number)| (*name == upper).then_some(number))
        .ok_or_else(|| format!("`{text}` is not a {} value", field.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_expressions() {
        for expression in [
            "* * * * *",
            "0 9 * * 1-5",
            "*/15 * * * *",
            "0 0 1 JAN *",
            "30 8 * * mon-fri",
            "0 0,12 1-15/2 * SUN",
            "0 0 L * *",
            "0 0 15W * *",
            "0 0 * * 5L",
            "0 0 * * 5#2",
            "0 0 ? * 7",
            "  0 9 * * 1  ",
        ] {
            assert_eq!(check(expression), Ok(()), "{expression}");
        }
        for shorthand in SHORTHANDS {
            assert_eq!(check(shorthand), Ok(()), "{shorthand}");
        }
    }

    #[test]
    fn rejects_with_the_offending_part() {
        let error = |expression: &str| check(expression).unwrap_err();
        assert!(error("0 9 * *").contains("expected 5 fields"));
        assert!(error("0 0 9 * * 1-5").contains("found 6"));
        assert_eq!(
            error("60 * * * *"),
            "the minute field `60` is invalid: `60` is out of range (0 to 59)"
        );
        assert!(error("0 24 * * *").contains("`24` is out of range (0 to 23)"));
        assert!(error("0 0 0 * *").contains("day-of-month"));
        assert!(error("0 0 * 13 *").contains("`13` is out of range (1 to 12)"));
        assert!(error("0 0 * FOO *").contains("`FOO` is not a month value"));
        assert!(error("0 0 * * 5-1").contains("the range `5-1` runs backwards"));
        assert!(error("*/0 * * * *").contains("`0` is not a step"));
        assert!(error("1,,2 * * * *").contains("empty item"));
        assert!(error("? * * * *").contains("`?` is not a minute value"));
        assert!(error("0 0 * * 5#6").contains("`#6` is not a week of the month"));
        assert!(error("@fortnightly").contains("`@fortnightly` is not a cron shorthand"));
    }
}
