//! Parsing `#[docket::task(...)]` into [`Options`].

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, ExprLit, ExprRange, Ident, Lit, LitInt, LitStr, Path, Token};

use crate::duration;

/// The option keys, for the unknown-key error.
const KEYS: &str = "name, crate, retry, timeout, perpetual, automatic, cron, concurrency, debounce, cooldown, rate_limit";

/// `retry = ...`
pub(crate) enum Retry {
    Fixed {
        attempts: Option<u32>,
        delay: u64,
    },
    Exponential {
        attempts: Option<u32>,
        minimum: u64,
        maximum: u64,
    },
}

pub(crate) struct Cron {
    pub expression: String,
    pub time_zone: Option<String>,
}

pub(crate) struct Concurrency {
    pub max: u32,
    pub arg: Option<Ident>,
    pub scope: Option<String>,
}

pub(crate) struct RateLimit {
    pub limit: u32,
    pub per: u64,
    pub drop: bool,
    pub arg: Option<Ident>,
}

/// Everything the attribute said, with the spans later checks point at.
#[derive(Default)]
pub(crate) struct Options {
    pub name: Option<LitStr>,
    pub krate: Option<Path>,
    pub retry: Option<Retry>,
    pub timeout: Option<u64>,
    pub perpetual: Option<u64>,
    pub perpetual_span: Option<Span>,
    pub automatic: Option<Span>,
    pub cron: Option<Cron>,
    pub cron_span: Option<Span>,
    pub concurrency: Option<Concurrency>,
    pub debounce: Option<u64>,
    pub cooldown: Option<u64>,
    pub rate_limit: Option<RateLimit>,
    /// Every key seen, to reject duplicates.
    seen: Vec<String>,
}

/// Parses the attribute's arguments, collecting every error.
pub(crate) fn parse(args: proc_macro2::TokenStream) -> (Options, Vec<syn::Error>) {
    let mut options = Options::default();
    let mut errors = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if let Err(error) = options.parse_one(&meta) {
            errors.push(error);
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(error) = syn::parse::Parser::parse2(parser, args) {
        errors.push(error);
    }
    (options, errors)
}

/// Consumes what follows a key that failed, so parsing can go on to the next key.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.input.parse::<Token![=]>()?;
        meta.input.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}

fn positive_u32(lit: &LitInt, what: &str) -> syn::Result<u32> {
    let value: u32 = lit.base10_parse().map_err(|_| {
        syn::Error::new_spanned(
            lit,
            format!("`{}` is not a valid {what}", lit.base10_digits()),
        )
    })?;
    if value == 0 {
        return Err(syn::Error::new_spanned(
            lit,
            format!("{what} must be at least 1, not `0`"),
        ));
    }
    Ok(value)
}

fn nonzero(expr: &Expr, what: &str) -> syn::Result<u64> {
    let nanos = duration::parse_expr(expr)?;
    if nanos == 0 {
        return Err(syn::Error::new_spanned(
            expr,
            format!("{what} must be longer than zero"),
        ));
    }
    Ok(nanos)
}

fn int_of(expr: &Expr, what: &str) -> syn::Result<u32> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) if lit.suffix().is_empty() => positive_u32(lit, what),
        _ => Err(syn::Error::new_spanned(
            expr,
            format!("expected {what} as a whole number"),
        )),
    }
}

fn parse_retry(expr: &Expr) -> syn::Result<Retry> {
    let usage = "expected `retry = N`, `Fixed(N, 5s)`, `Exponential(N, 30s..10m)`, `Forever(5s)` or `Exponential(forever, 1s..1m)`";
    match expr {
        Expr::Lit(_) => Ok(Retry::Fixed {
            attempts: Some(int_of(expr, "the number of attempts")?),
            delay: 0,
        }),
        Expr::Call(ExprCall { func, args, .. }) => {
            let Expr::Path(path) = &**func else {
                return Err(syn::Error::new_spanned(func, usage));
            };
            let name = path
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let args: Vec<&Expr> = args.iter().collect();
            let attempts = |expr: &Expr| -> syn::Result<Option<u32>> {
                match expr {
                    Expr::Path(p) if p.path.is_ident("forever") => Ok(None),
                    _ => int_of(expr, "the number of attempts").map(Some),
                }
            };
            match (name.as_str(), args.as_slice()) {
                ("Fixed", [n, delay]) => Ok(Retry::Fixed {
                    attempts: attempts(n)?,
                    delay: nonzero(delay, "the retry delay")?,
                }),
                ("Forever", [delay]) => Ok(Retry::Fixed {
                    attempts: None,
                    delay: nonzero(delay, "the retry delay")?,
                }),
                ("Exponential", [n, Expr::Range(range)]) => {
                    let (minimum, maximum) = parse_range(range)?;
                    Ok(Retry::Exponential {
                        attempts: attempts(n)?,
                        minimum,
                        maximum,
                    })
                }
                ("Exponential", [_, other]) => Err(syn::Error::new_spanned(
                    other,
                    "expected a delay range such as `30s..10m`",
                )),
                _ => Err(syn::Error::new_spanned(expr, usage)),
            }
        }
        _ => Err(syn::Error::new_spanned(expr, usage)),
    }
}

fn parse_range(range: &ExprRange) -> syn::Result<(u64, u64)> {
    let (Some(start), Some(end)) = (&range.start, &range.end) else {
        return Err(syn::Error::new_spanned(
            range,
            "expected a delay range with both ends, such as `30s..10m`",
        ));
    };
    let minimum = nonzero(start, "the minimum delay")?;
    let maximum = nonzero(end, "the maximum delay")?;
    if minimum > maximum {
        return Err(syn::Error::new_spanned(
            range,
            "the minimum delay is longer than the maximum delay",
        ));
    }
    Ok((minimum, maximum))
}

fn check_cron(lit: &LitStr) -> syn::Result<String> {
    let expression = lit.value();
    let aliases = [
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    let fields = expression.split_whitespace().count();
    if aliases.contains(&expression.trim()) || (fields == 5 && !expression.contains('@')) {
        Ok(expression)
    } else {
        Err(syn::Error::new_spanned(
            lit,
            format!(
                "invalid cron expression `{expression}`: use 5 fields (minute hour day-of-month month day-of-week) or one of @yearly, @monthly, @weekly, @daily, @hourly"
            ),
        ))
    }
}

impl Options {
    fn once(&mut self, meta: &ParseNestedMeta<'_>, key: &str) -> syn::Result<()> {
        let group = if key == "perpetual" || key == "cron" {
            "schedule"
        } else {
            key
        };
        if self.seen.iter().any(|k| k == group) {
            let message = if group == "schedule" {
                format!(
                    "duplicate schedule `{key}`: a task takes one `perpetual` or `cron`, not both"
                )
            } else {
                format!("duplicate `{key}`: each option may be given once")
            };
            return Err(syn::Error::new_spanned(&meta.path, message));
        }
        self.seen.push(group.to_owned());
        Ok(())
    }

    fn parse_perpetual(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.once(meta, "perpetual")?;
        self.perpetual_span = Some(meta.path.span());
        if meta.input.peek(Token![=]) {
            self.perpetual = Some(nonzero(&meta.value()?.parse()?, "a perpetual interval")?);
        } else {
            let mut every = None;
            meta.parse_nested_meta(|inner| {
                if inner.path.is_ident("every") {
                    every = Some(nonzero(&inner.value()?.parse()?, "a perpetual interval")?);
                } else if inner.path.is_ident("automatic") {
                    self.automatic = Some(inner.path.span());
                } else {
                    return Err(
                        inner.error("expected `every = ...` or `automatic` in `perpetual(...)`")
                    );
                }
                Ok(())
            })?;
            self.perpetual =
                Some(every.ok_or_else(|| meta.error("`perpetual(...)` needs `every = ...`"))?);
        }
        Ok(())
    }

    fn parse_cron(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.once(meta, "cron")?;
        self.cron_span = Some(meta.path.span());
        if meta.input.peek(Token![=]) {
            let lit: LitStr = meta.value()?.parse()?;
            self.cron = Some(Cron {
                expression: check_cron(&lit)?,
                time_zone: None,
            });
        } else {
            let (mut expression, mut time_zone) = (None, None);
            meta.parse_nested_meta(|inner| {
                if inner.path.is_ident("expr") {
                    expression = Some(check_cron(&inner.value()?.parse()?)?);
                } else if inner.path.is_ident("tz") {
                    let tz: LitStr = inner.value()?.parse()?;
                    if tz.value().is_empty() {
                        return Err(syn::Error::new_spanned(tz, "a time zone cannot be empty"));
                    }
                    time_zone = Some(tz.value());
                } else {
                    return Err(
                        inner.error("expected `expr = \"...\"` or `tz = \"...\"` in `cron(...)`")
                    );
                }
                Ok(())
            })?;
            let expression =
                expression.ok_or_else(|| meta.error("`cron(...)` needs `expr = \"...\"`"))?;
            self.cron = Some(Cron {
                expression,
                time_zone,
            });
        }
        Ok(())
    }

    fn parse_concurrency(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        self.once(meta, "concurrency")?;
        let (mut max, mut arg, mut scope) = (None, None, None);
        meta.parse_nested_meta(|inner| {
            if inner.path.is_ident("max") {
                max = Some(positive_u32(&inner.value()?.parse()?, "the concurrency limit")?);
            } else if inner.path.is_ident("arg") {
                arg = Some(inner.value()?.parse::<Ident>()?);
            } else if inner.path.is_ident("scope") {
                scope = Some(inner.value()?.parse::<LitStr>()?.value());
            } else {
                return Err(inner.error("expected `max = N`, `arg = parameter` or `scope = \"...\"` in `concurrency(...)`"));
            }
            Ok(())
        })?;
        let max = max.ok_or_else(|| meta.error("`concurrency(...)` needs `max = N`"))?;
        self.concurrency = Some(Concurrency { max, arg, scope });
        Ok(())
    }

    fn parse_one(&mut self, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let key = meta.path.get_ident().map_or_else(
            || {
                let segments: Vec<String> = meta
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                segments.join("::")
            },
            ToString::to_string,
        );
        match key.as_str() {
            "name" => {
                self.once(meta, "name")?;
                let name: LitStr = meta.value()?.parse()?;
                if name.value().is_empty() {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "a task name cannot be empty",
                    ));
                }
                self.name = Some(name);
            }
            "crate" => {
                self.once(meta, "crate")?;
                let value = meta.value()?;
                self.krate = Some(if value.peek(LitStr) {
                    value.parse::<LitStr>()?.parse()?
                } else {
                    value.parse()?
                });
            }
            "retry" => {
                self.once(meta, "retry")?;
                self.retry = Some(parse_retry(&meta.value()?.parse()?)?);
            }
            "timeout" => {
                self.once(meta, "timeout")?;
                self.timeout = Some(nonzero(&meta.value()?.parse()?, "a timeout")?);
            }
            "debounce" => {
                self.once(meta, "debounce")?;
                self.debounce = Some(nonzero(&meta.value()?.parse()?, "a debounce")?);
            }
            "cooldown" => {
                self.once(meta, "cooldown")?;
                self.cooldown = Some(nonzero(&meta.value()?.parse()?, "a cooldown")?);
            }
            "automatic" => {
                self.once(meta, "automatic")?;
                self.automatic = Some(meta.path.span());
            }
            "perpetual" => {
                self.parse_perpetual(meta)?;
            }
            "cron" => {
                self.parse_cron(meta)?;
            }
            "concurrency" => {
                self.parse_concurrency(meta)?;
            }
            "rate_limit" => {
                self.once(meta, "rate_limit")?;
                let content;
                syn::parenthesized!(content in meta.input);
                self.rate_limit = Some(parse_rate_limit(&content)?);
            }
            _ => {
                return Err(syn::Error::new_spanned(
                    &meta.path,
                    format!("unknown option `{key}`; valid options are: {KEYS}"),
                ));
            }
        }
        Ok(())
    }
}

fn parse_rate_limit(content: ParseStream<'_>) -> syn::Result<RateLimit> {
    let limit = positive_u32(&content.parse()?, "the rate limit")?;
    let (mut per, mut drop, mut arg) = (None, false, None);
    while !content.is_empty() {
        content.parse::<Token![,]>()?;
        if content.is_empty() {
            break;
        }
        let key: Ident = content.parse()?;
        match key.to_string().as_str() {
            "per" => {
                content.parse::<Token![=]>()?;
                per = Some(nonzero(&content.parse()?, "a rate-limit window")?);
            }
            "drop" => drop = true,
            "arg" => {
                content.parse::<Token![=]>()?;
                arg = Some(content.parse::<Ident>()?);
            }
            other => {
                return Err(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown `rate_limit` option `{other}`; expected `per = ...`, `drop` or `arg = parameter`"
                    ),
                ));
            }
        }
    }
    let per = per.ok_or_else(|| content.error("`rate_limit(N, ...)` needs `per = ...`"))?;
    Ok(RateLimit {
        limit,
        per,
        drop,
        arg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: proc_macro2::TokenStream) -> Options {
        let (options, errors) = parse(tokens);
        assert!(
            errors.is_empty(),
            "{:?}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        options
    }

    fn parse_err(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let (_, errors) = parse(tokens);
        assert!(!errors.is_empty());
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_full_grammar_parses() {
        let options = parse_ok(quote!(
            name = "wire",
            retry = Exponential(5, 30s..10m),
            timeout = "2m",
            perpetual(every = "1m", automatic),
            concurrency(max = 2, arg = customer, scope = "s"),
            debounce = 5s,
            cooldown = "1m",
            rate_limit(10, per = "1m", drop)
        ));
        assert_eq!(options.name.unwrap().value(), "wire");
        assert!(matches!(
            options.retry,
            Some(Retry::Exponential {
                attempts: Some(5),
                minimum: 30_000_000_000,
                maximum: 600_000_000_000
            })
        ));
        assert_eq!(options.perpetual, Some(60_000_000_000));
        assert!(options.automatic.is_some());
        let rate = options.rate_limit.unwrap();
        assert_eq!(
            (rate.limit, rate.per, rate.drop),
            (10, 60_000_000_000, true)
        );
    }

    #[test]
    fn retry_forms() {
        assert!(matches!(
            parse_ok(quote!(retry = 3)).retry,
            Some(Retry::Fixed {
                attempts: Some(3),
                delay: 0
            })
        ));
        assert!(matches!(
            parse_ok(quote!(retry = Forever(5s))).retry,
            Some(Retry::Fixed { attempts: None, .. })
        ));
        assert!(matches!(
            parse_ok(quote!(retry = Exponential(forever, 1s..1m))).retry,
            Some(Retry::Exponential { attempts: None, .. })
        ));
        assert!(
            parse_err(quote!(retry = Exponential(3, 10m..1s)))[0]
                .contains("minimum delay is longer")
        );
    }

    #[test]
    fn errors_are_collected() {
        let errors = parse_err(quote!(bogus = 1, timeout = 5parsecs, retry = 1, retry = 2));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("unknown option `bogus`"));
        assert!(errors[1].contains("invalid duration"));
        assert!(errors[2].contains("duplicate `retry`"));
    }

    #[test]
    fn cron_forms() {
        let options = parse_ok(quote!(cron(expr = "0 9 * * 1-5", tz = "Europe/Paris")));
        assert_eq!(
            options.cron.unwrap().time_zone.as_deref(),
            Some("Europe/Paris")
        );
        parse_ok(quote!(cron = "@daily"));
        assert!(parse_err(quote!(cron = "every day"))[0].contains("invalid cron expression"));
        assert!(parse_err(quote!(perpetual = "1m", cron = "@daily"))[0].contains("duplicate"));
    }
}
