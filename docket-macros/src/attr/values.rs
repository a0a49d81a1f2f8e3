//! Reading one value: `name = "..."`, `retry = ...`, `arg = param`, `crate = path`,
//! counts, cron expressions and time zones.

use proc_macro2::Span;
use syn::{Expr, Ident, Lit, LitInt, LitStr, Path, RangeLimits};

use super::{RETRY_FORMS, Retry};
use crate::cron;
use crate::duration::{self, Duration};
use crate::errors::{choices, display};

/// The expression without the invisible groups `macro_rules!` wraps around values, or
/// parentheses.
fn peel(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => peel(&group.expr),
        Expr::Paren(paren) => peel(&paren.expr),
        _ => expr,
    }
}

/// The literal `expr` is, if it is one.
fn literal(expr: &Expr) -> Option<&Lit> {
    match peel(expr) {
        Expr::Lit(literal) => Some(&literal.lit),
        _ => None,
    }
}

/// A string literal.
pub(super) fn string(expr: &Expr, what: &str) -> syn::Result<LitStr> {
    match literal(expr) {
        Some(Lit::Str(string)) => Ok(string.clone()),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("{what} takes a string, found `{}`", display(expr)),
        )),
    }
}

/// A whole number of at least 1, without a suffix (`3s` is not a count).
pub(super) fn count(expr: &Expr, what: &str) -> syn::Result<u32> {
    match literal(expr) {
        Some(Lit::Int(int)) => count_literal(int, what),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("{what} must be a whole number, found `{}`", display(expr)),
        )),
    }
}

/// As [`count`], for a literal already parsed.
pub(super) fn count_literal(int: &LitInt, what: &str) -> syn::Result<u32> {
    if !int.suffix().is_empty() {
        return Err(syn::Error::new(
            int.span(),
            format!("{what} is a plain number, found `{int}`"),
        ));
    }
    match int.base10_parse::<u32>() {
        Ok(0) => Err(syn::Error::new(
            int.span(),
            format!("{what} must be at least 1, found `0`"),
        )),
        Ok(count) => Ok(count),
        Err(_) => Err(syn::Error::new(
            int.span(),
            format!("{what} `{int}` is too large"),
        )),
    }
}

/// A parameter name, as in `arg = customer_id`.
pub(super) fn parameter(expr: &Expr) -> syn::Result<Ident> {
    if let Expr::Path(path) = peel(expr)
        && path.qself.is_none()
        && let Some(ident) = path.path.get_ident()
    {
        return Ok(ident.clone());
    }
    Err(syn::Error::new_spanned(
        expr,
        format!(
            "`arg` takes the name of a parameter, such as `arg = customer_id`, found `{}`",
            display(expr)
        ),
    ))
}

/// `crate = some::path` or `crate = "some::path"`.
pub(super) fn crate_path(expr: &Expr) -> syn::Result<Path> {
    if let Expr::Path(path) = peel(expr)
        && path.qself.is_none()
    {
        return Ok(path.path.clone());
    }
    if let Some(Lit::Str(string)) = literal(expr) {
        return string.parse().map_err(|_| {
            syn::Error::new(
                string.span(),
                format!("`crate` takes a path, found `{}`", string.value()),
            )
        });
    }
    Err(syn::Error::new_spanned(
        expr,
        format!(
            "`crate` takes a path such as `crate = docket`, found `{}`",
            display(expr)
        ),
    ))
}

/// A cron expression, checked.
pub(super) fn cron_expression(expr: &Expr) -> syn::Result<String> {
    let literal = string(expr, "`cron`")?;
    let expression = literal.value();
    cron::check(&expression).map_err(|detail| {
        syn::Error::new(
            literal.span(),
            format!("invalid cron expression `{expression}`: {detail}"),
        )
    })?;
    Ok(expression.trim().to_owned())
}

/// An IANA time zone name; only its shape is checked here, the worker resolves it.
pub(super) fn zone_name(expr: &Expr) -> syn::Result<String> {
    let literal = string(expr, "`tz`")?;
    let name = literal.value();
    let plausible = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !plausible {
        return Err(syn::Error::new(
            literal.span(),
            format!(
                "`{name}` is not a time zone name; use an IANA name such as `Europe/Paris` or `UTC`"
            ),
        ));
    }
    Ok(name)
}

/// The attempts of `Fixed(...)` or `Exponential(...)`: a number or `forever`.
fn attempts(expr: &Expr) -> syn::Result<Option<u32>> {
    if let Expr::Path(path) = peel(expr)
        && path.path.is_ident("forever")
    {
        return Ok(None);
    }
    count(expr, "the number of attempts").map(Some)
}

pub(super) fn retry(expr: &Expr) -> syn::Result<Retry> {
    let usage = || {
        syn::Error::new_spanned(
            expr,
            format!(
                "invalid retry policy `{}`; expected {RETRY_FORMS}",
                display(expr)
            ),
        )
    };
    match peel(expr) {
        Expr::Lit(_) => Ok(Retry::Fixed {
            attempts: Some(count(expr, "the number of attempts")?),
            delay: Duration {
                nanos: 0,
                span: Span::call_site(),
            },
        }),
        Expr::Call(call) => {
            let Expr::Path(function) = peel(&call.func) else {
                return Err(usage());
            };
            let Some(policy) = function.path.get_ident() else {
                return Err(usage());
            };
            let args: Vec<&Expr> = call.args.iter().collect();
            match (policy.to_string().as_str(), args.as_slice()) {
                ("Fixed", [count, delay]) => Ok(Retry::Fixed {
                    attempts: attempts(count)?,
                    delay: duration::parse(delay)?,
                }),
                ("Forever", [delay]) => Ok(Retry::Fixed {
                    attempts: None,
                    delay: duration::parse(delay)?,
                }),
                ("Exponential", [count, range]) => {
                    let attempts = attempts(count)?;
                    let (minimum, maximum) = delay_range(range)?;
                    Ok(Retry::Exponential {
                        attempts,
                        minimum,
                        maximum,
                    })
                }
                ("Fixed", _) => Err(syn::Error::new_spanned(
                    expr,
                    "`Fixed` takes the attempts and a delay: `Fixed(3, 5s)`",
                )),
                ("Forever", _) => Err(syn::Error::new_spanned(
                    expr,
                    "`Forever` takes a delay: `Forever(5s)`",
                )),
                ("Exponential", _) => Err(syn::Error::new_spanned(
                    expr,
                    "`Exponential` takes the attempts and a range of delays: `Exponential(5, 30s..10m)`",
                )),
                (other, _) => Err(syn::Error::new(
                    policy.span(),
                    format!(
                        "unknown retry policy `{other}`; expected {}",
                        choices(&["Fixed", "Exponential", "Forever"])
                    ),
                )),
            }
        }
        _ => Err(usage()),
    }
}

/// `30s..10m`: the first and the largest delay of an exponential retry.
fn delay_range(expr: &Expr) -> syn::Result<(Duration, Duration)> {
    let Expr::Range(range) = peel(expr) else {
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "expected a range of delays such as `30s..10m`, found `{}`",
                display(expr)
            ),
        ));
    };
    let (Some(start), Some(end), RangeLimits::HalfOpen(_)) =
        (&range.start, &range.end, &range.limits)
    else {
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "expected a range of delays such as `30s..10m`, found `{}`",
                display(expr)
            ),
        ));
    };
    let minimum = duration::parse_positive(start, "the minimum delay")?;
    let maximum = duration::parse(end)?;
    if minimum.nanos > maximum.nanos {
        return Err(syn::Error::new_spanned(
            expr,
            format!(
                "the minimum delay `{}` is longer than the maximum delay `{}`",
                display(start),
                display(end)
            ),
        ));
    }
    Ok((minimum, maximum))
}
