//! Durations in the attribute: `250ms`, `30s`, `1.5s`, `10m`, `2h`, `1d`, or strings
//! such as `"1h30m"`.

use syn::{Expr, ExprLit, Lit};

/// The accepted forms, for error messages.
pub(crate) const FORMS: &str = "use a number with a unit (`250ms`, `30s`, `1.5s`, `10m`, `2h`, `1d`) or a string such as `\"1h30m\"`";

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3_600e9,
        "d" => 86_400e9,
        _ => return None,
    })
}

/// Parses `"1h30m"`, `"250ms"`, `"1.5s"` into nanoseconds.
pub(crate) fn parse_text(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("an empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{text}` has a number without a unit"))?;
        if number_len == 0 {
            return Err(format!("`{text}` does not start with a number"));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("`{}` is not a number", &rest[..number_len]))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let nanos = unit_nanos(unit).ok_or_else(|| format!("`{unit}` is not a unit"))?;
        total += number * nanos;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total >= 1.8e19 {
        return Err(format!("`{text}` is too long"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(total.round() as u64)
}

/// Parses a duration expression from the attribute.
pub(crate) fn parse_expr(expr: &Expr) -> syn::Result<u64> {
    let error = |detail: String| {
        syn::Error::new_spanned(expr, format!("invalid duration: {detail}; {FORMS}"))
    };
    match expr {
        Expr::Lit(ExprLit { lit, .. }) => {
            let text = match lit {
                Lit::Str(s) => s.value(),
                Lit::Int(i) if !i.suffix().is_empty() => {
                    format!("{}{}", i.base10_digits(), i.suffix())
                }
                Lit::Float(f) if !f.suffix().is_empty() => {
                    format!("{}{}", f.base10_digits(), f.suffix())
                }
                Lit::Int(i) => return Err(error(format!("`{}` has no unit", i.base10_digits()))),
                Lit::Float(f) => {
                    return Err(error(format!("`{}` has no unit", f.base10_digits())));
                }
                _ => return Err(error("not a number or a string".into())),
            };
            parse_text(&text).map_err(error)
        }
        Expr::Group(group) => parse_expr(&group.expr),
        _ => Err(error("not a literal".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        assert_eq!(parse_text("250ms"), Ok(250_000_000));
        assert_eq!(parse_text("1m"), Ok(60_000_000_000));
        assert_eq!(parse_text("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_text("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_text("1d"), Ok(86_400_000_000_000));
    }

    #[test]
    fn bad_text_names_the_problem() {
        assert!(parse_text("").is_err());
        assert!(parse_text("30").unwrap_err().contains("without a unit"));
        assert!(
            parse_text("5 parsecs")
                .unwrap_err()
                .contains("is not a unit")
        );
        assert!(
            parse_text("ms")
                .unwrap_err()
                .contains("does not start with a number")
        );
    }

    #[test]
    fn suffixed_literals() {
        let expr: Expr = syn::parse_quote!(30s);
        assert_eq!(parse_expr(&expr).unwrap(), 30_000_000_000);
        let expr: Expr = syn::parse_quote!(1.5s);
        assert_eq!(parse_expr(&expr).unwrap(), 1_500_000_000);
        let expr: Expr = syn::parse_quote!("10m");
        assert_eq!(parse_expr(&expr).unwrap(), 600_000_000_000);
        let expr: Expr = syn::parse_quote!(30);
        assert!(
            parse_expr(&expr)
                .unwrap_err()
                .to_string()
                .contains("has no unit")
        );
    }
}
