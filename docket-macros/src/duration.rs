//! Durations in the attribute: literals with a unit suffix (`250ms`, `30s`, `1.5s`,
//! `10m`, `2h`, `1d`) or strings of one or more such parts (`"1h30m"`).
//!
//! Arithmetic is exact: `"0.1s"` is 100,000,000 nanoseconds, not a float's neighbour.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

use crate::errors::display;

/// What a duration may look like, appended to every duration error.
pub(crate) const FORMS: &str = "write a number with a unit (`ms`, `s`, `m`, `h` or `d`), \
     such as `250ms`, `30s`, `1.5s`, `10m`, or a string such as `\"1h30m\"`";

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A duration read from the attribute, with where it was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Duration {
    /// The length in nanoseconds.
    pub(crate) nanos: u64,
    /// The tokens it came from.
    pub(crate) span: Span,
}

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3_600 * NANOS_PER_SECOND,
        "d" => 86_400 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// One `number unit` part, e.g. `1.5` and `s`, in nanoseconds.
fn part_nanos(number: &str, unit: &str) -> Result<u128, String> {
    let per_unit = unit_nanos(unit).ok_or_else(|| format!("`{unit}` is not a unit"))?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let well_formed = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(number.contains('.') && fraction.is_empty());
    if !well_formed {
        return Err(format!("`{number}` is not a number"));
    }
    let too_long = || format!("`{number}{unit}` is too long");
    let whole: u128 = whole.parse().map_err(|_| too_long())?;
    let mut nanos = whole.checked_mul(per_unit).ok_or_else(too_long)?;
    // Each fractional digit is worth a tenth of the one before; digits finer than a
    // nanosecond are dropped.
    let mut place = per_unit;
    for digit in fraction.bytes() {
        place /= 10;
        nanos += u128::from(digit - b'0') * place;
    }
    Ok(nanos)
}

/// Parses `"1h30m"`, `"250ms"`, `"1.5s"` (parts may be separated by spaces) into
/// nanoseconds; the error says what is wrong, without the accepted forms.
pub(crate) fn parse_text(text: &str) -> Result<u64, String> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() {
            return Err(format!(
                "`{}` does not start with a number",
                rest.trim_end()
            ));
        }
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(format!("`{number}` has no unit"));
        }
        total = total
            .checked_add(part_nanos(number, unit)?)
            .ok_or_else(|| format!("`{}` is too long", text.trim()))?;
        rest = after.trim_start();
    }
    u64::try_from(total).map_err(|_| format!("`{}` is too long", text.trim()))
}

/// Reads a duration written in the attribute.
///
/// # Errors
/// An error at the tokens, naming them and the accepted forms.
pub(crate) fn parse(expr: &Expr) -> syn::Result<Duration> {
    let error = |detail: String| {
        syn::Error::new_spanned(
            expr,
            format!("invalid duration `{}`: {detail}; {FORMS}", display(expr)),
        )
    };
    let text = match expr {
        Expr::Group(group) => return parse(&group.expr),
        Expr::Paren(paren) => return parse(&paren.expr),
        Expr::Lit(literal) => match &literal.lit {
            Lit::Str(string) => string.value(),
            Lit::Int(int) if int.suffix().is_empty() => {
                return Err(error(format!("`{}` has no unit", int.base10_digits())));
            }
            Lit::Float(float) if float.suffix().is_empty() => {
                return Err(error(format!("`{}` has no unit", float.base10_digits())));
            }
            Lit::Int(int) => format!("{}{}", int.base10_digits(), int.suffix()),
            Lit::Float(float) => format!("{}{}", float.base10_digits(), float.suffix()),
            _ => return Err(error("expected a number or a string".to_owned())),
        },
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => {
            return Err(error("durations cannot be negative".to_owned()));
        }
        _ => return Err(error("expected a literal".to_owned())),
    };
    let nanos = parse_text(&text).map_err(error)?;
    Ok(Duration {
        nanos,
        span: expr.span(),
    })
}

/// Reads a duration that must be longer than zero (a timeout, an interval, a window).
///
/// # Errors
/// As [`parse`], and when the duration is zero.
pub(crate) fn parse_positive(expr: &Expr, what: &str) -> syn::Result<Duration> {
    let duration = parse(expr)?;
    if duration.nanos == 0 {
        return Err(syn::Error::new(
            duration.span,
            format!("{what} `{}` must be longer than zero", display(expr)),
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn text_forms() {
        assert_eq!(parse_text("250ms"), Ok(250_000_000));
        assert_eq!(parse_text("30s"), Ok(30 * SECOND));
        assert_eq!(parse_text("1m"), Ok(60 * SECOND));
        assert_eq!(parse_text("2h"), Ok(7_200 * SECOND));
        assert_eq!(parse_text("1d"), Ok(86_400 * SECOND));
        assert_eq!(parse_text("1h30m"), Ok(5_400 * SECOND));
        assert_eq!(parse_text("1h 30m 15s"), Ok(5_415 * SECOND));
        assert_eq!(parse_text("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_text("0s"), Ok(0));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse_text("0.1s"), Ok(100_000_000));
        assert_eq!(parse_text("0.001ms"), Ok(1_000));
        assert_eq!(parse_text("1.25m"), Ok(75 * SECOND));
        // Below a nanosecond is dropped, not rounded into a float error.
        assert_eq!(parse_text("0.0000000019s"), Ok(1));
    }

    #[test]
    fn bad_text_names_the_problem() {
        assert_eq!(parse_text(""), Err("the duration is empty".to_owned()));
        assert_eq!(parse_text("30"), Err("`30` has no unit".to_owned()));
        assert_eq!(
            parse_text("5 parsecs"),
            Err("`parsecs` is not a unit".to_owned())
        );
        assert_eq!(parse_text("5ns"), Err("`ns` is not a unit".to_owned()));
        assert_eq!(
            parse_text("ms"),
            Err("`ms` does not start with a number".to_owned())
        );
        assert_eq!(
            parse_text("1h-5m"),
            Err("`-5m` does not start with a number".to_owned())
        );
        assert_eq!(
            parse_text("1.2.3s"),
            Err("`1.2.3` is not a number".to_owned())
        );
        assert_eq!(parse_text("5.s"), Err("`5.` is not a number".to_owned()));
        assert_eq!(parse_text("1h30"), Err("`30` has no unit".to_owned()));
        assert!(
            parse_text("300000000000000000000000d")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_text("584555d").unwrap_err().contains("too long"));
    }

    #[test]
    fn literals_with_a_unit_suffix() {
        let nanos = |expr: Expr| parse(&expr).map(|d| d.nanos).map_err(|e| e.to_string());
        assert_eq!(nanos(parse_quote!(30s)), Ok(30 * SECOND));
        assert_eq!(nanos(parse_quote!(250ms)), Ok(250_000_000));
        assert_eq!(nanos(parse_quote!(1.5s)), Ok(1_500_000_000));
        assert_eq!(nanos(parse_quote!(10m)), Ok(600 * SECOND));
        assert_eq!(nanos(parse_quote!(2h)), Ok(7_200 * SECOND));
        assert_eq!(nanos(parse_quote!(1d)), Ok(86_400 * SECOND));
        assert_eq!(nanos(parse_quote!("1h30m")), Ok(5_400 * SECOND));
    }

    #[test]
    fn bad_literals_name_the_literal_and_the_forms() {
        let message = |expr: Expr| parse(&expr).unwrap_err().to_string();
        let unitless = message(parse_quote!(30));
        assert!(unitless.starts_with("invalid duration `30`: `30` has no unit; write a number"));
        assert!(message(parse_quote!(5y)).starts_with("invalid duration `5y`: `y` is not a unit"));
        assert!(message(parse_quote!("soon")).starts_with("invalid duration `\"soon\"`"));
        assert!(message(parse_quote!(-5s)).contains("cannot be negative"));
        assert!(message(parse_quote!(five)).contains("expected a literal"));
        assert!(message(parse_quote!(true)).contains("expected a number or a string"));
    }

    #[test]
    fn positive_durations_reject_zero() {
        let zero: Expr = parse_quote!("0s");
        let error = parse_positive(&zero, "the timeout")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "the timeout `\"0s\"` must be longer than zero");
        let one: Expr = parse_quote!(1ms);
        assert_eq!(
            parse_positive(&one, "the timeout").unwrap().nanos,
            1_000_000
        );
    }
}
