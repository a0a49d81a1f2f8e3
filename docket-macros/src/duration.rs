//! Durations in the attribute: literals with a unit suffix (`250ms`, `30s`, `1.5s`,
//! `10m`, `2h`, `1d`) or strings of one or more such parts (`"1h30m"`), read by
//! [`docket_grammar`] in its numbers-with-units forms.

use docket_grammar::duration::{self as grammar, Forms};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

use crate::errors::display;

/// What a duration may look like, appended to every duration error.
pub(crate) const FORMS: &str = "write a number with a unit (`ms`, `s`, `m`, `h` or `d`), \
     such as `250ms`, `30s`, `1.5s`, `10m`, or a string such as `\"1h30m\"`";

/// A duration read from the attribute, with where it was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Duration {
    /// The length in nanoseconds.
    pub(crate) nanos: u64,
    /// The tokens it came from.
    pub(crate) span: Span,
}

/// Reads the text of a literal or string as a duration in nanoseconds, which the
/// generated code holds in a `u64` (about 584 years); the error says what is wrong,
/// without the accepted forms.
fn nanos(text: &str) -> Result<u64, String> {
    let duration = grammar::parse(text, Forms::UnitsOnly).map_err(|reason| reason.to_string())?;
    u64::try_from(duration.as_nanos())
        .map_err(|_| "it is too long; the longest is about 584 years".to_owned())
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
    let nanos = nanos(&text).map_err(error)?;
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
    fn literals_with_a_unit_suffix() {
        let nanos = |expr: Expr| parse(&expr).map(|d| d.nanos).map_err(|e| e.to_string());
        assert_eq!(nanos(parse_quote!(30s)), Ok(30 * SECOND));
        assert_eq!(nanos(parse_quote!(250ms)), Ok(250_000_000));
        assert_eq!(nanos(parse_quote!(1.5s)), Ok(1_500_000_000));
        assert_eq!(nanos(parse_quote!(10m)), Ok(600 * SECOND));
        assert_eq!(nanos(parse_quote!(2h)), Ok(7_200 * SECOND));
        assert_eq!(nanos(parse_quote!(1d)), Ok(86_400 * SECOND));
        assert_eq!(nanos(parse_quote!("1h30m")), Ok(5_400 * SECOND));
        assert_eq!(nanos(parse_quote!(1h30m)), Ok(5_400 * SECOND));
        assert_eq!(nanos(parse_quote!(("1h 30m"))), Ok(5_400 * SECOND));
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
    fn strings_take_numbers_with_units_only() {
        let message = |expr: Expr| parse(&expr).unwrap_err().to_string();
        assert_eq!(
            message(parse_quote!("90")),
            format!("invalid duration `\"90\"`: `90` has no unit; {FORMS}")
        );
        assert_eq!(
            message(parse_quote!("01:30")),
            format!(
                "invalid duration `\"01:30\"`: `01:30` is a clock, and clocks are not \
                 accepted here; {FORMS}"
            )
        );
        assert_eq!(
            message(parse_quote!("")),
            format!("invalid duration `\"\"`: it is empty; {FORMS}")
        );
        assert!(message(parse_quote!("30s 5m")).contains("`m` comes after `s`"));
    }

    #[test]
    fn durations_beyond_584_years_are_too_long() {
        assert_eq!(nanos("213503d"), Ok(213_503 * 86_400 * SECOND));
        assert_eq!(
            nanos("213504d"),
            Err("it is too long; the longest is about 584 years".to_owned())
        );
        assert!(nanos("584555d").unwrap_err().contains("too long"));
        assert!(
            nanos("300000000000000000000000d")
                .unwrap_err()
                .contains("too long")
        );
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
