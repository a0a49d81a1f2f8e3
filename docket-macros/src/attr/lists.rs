//! Options written as a list of keys in parentheses: `perpetual(every = ..., automatic)`,
//! `cron(expr = ..., tz = ...)`, `concurrency(max = ..., arg = ..., scope = ...)` and
//! `rate_limit(N, per = ..., drop, arg = ...)`. Each list is parsed on its own and
//! reports all of its mistakes together.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{LitInt, Token, token};

use super::values::{count, count_literal, cron_expression, parameter, string, zone_name};
use super::{Concurrency, Cron, Once, RateLimit, flag, key, keys, parenthesized, value};
use crate::duration::{self, Duration};
use crate::errors::Errors;

/// `perpetual = "1m"` or `perpetual(every = "1m", automatic)`.
pub(super) fn perpetual(meta: &ParseNestedMeta, automatic: &mut Once<()>) -> syn::Result<Duration> {
    const WHAT: &str = "the perpetual interval";
    const USAGE: &str = "`perpetual = \"1m\"` or `perpetual(every = \"1m\", automatic)`";
    if !meta.input.peek(token::Paren) {
        return duration::parse_positive(&value(meta, USAGE)?, WHAT);
    }
    let mut every = Once::new("every");
    let mut errors = Errors::default();
    keys(parenthesized(meta, USAGE)?, &mut errors, |inner, errors| {
        let key = key(inner, &["every", "automatic"], "`perpetual` option")?;
        if key == "every" {
            every.set(&key, errors, || {
                duration::parse_positive(&value(inner, "`every = \"1m\"`")?, WHAT)
            })
        } else {
            automatic.set(&key, errors, || flag(inner))
        }
    });
    errors.finish()?;
    every.value.ok_or_else(|| {
        meta.error("`perpetual(...)` needs an interval: `perpetual(every = \"1m\")`")
    })
}

/// `cron = "..."` or `cron(expr = "...", tz = "...")`.
pub(super) fn cron(meta: &ParseNestedMeta) -> syn::Result<Cron> {
    const USAGE: &str =
        "`cron = \"0 9 * * 1-5\"` or `cron(expr = \"0 9 * * 1-5\", tz = \"Europe/Paris\")`";
    if !meta.input.peek(token::Paren) {
        let expression = cron_expression(&value(meta, USAGE)?)?;
        return Ok(Cron {
            expression,
            time_zone: None,
        });
    }
    let mut expression = Once::new("expr");
    let mut time_zone = Once::new("tz");
    let mut errors = Errors::default();
    keys(parenthesized(meta, USAGE)?, &mut errors, |inner, errors| {
        let key = key(inner, &["expr", "tz"], "`cron` option")?;
        if key == "expr" {
            expression.set(&key, errors, || {
                cron_expression(&value(inner, "`expr = \"0 9 * * 1-5\"`")?)
            })
        } else {
            time_zone.set(&key, errors, || {
                zone_name(&value(inner, "`tz = \"Europe/Paris\"`")?)
            })
        }
    });
    errors.finish()?;
    let expression = expression.value.ok_or_else(|| {
        meta.error("`cron(...)` needs an expression: `cron(expr = \"0 9 * * 1-5\")`")
    })?;
    Ok(Cron {
        expression,
        time_zone: time_zone.value,
    })
}

/// `concurrency(max = N, arg = param, scope = "...")`.
pub(super) fn concurrency(meta: &ParseNestedMeta) -> syn::Result<Concurrency> {
    const USAGE: &str = "`concurrency(max = 1)` or `concurrency(max = 2, arg = parameter)`";
    let mut max = Once::new("max");
    let mut arg = Once::new("arg");
    let mut scope = Once::new("scope");
    let mut errors = Errors::default();
    keys(parenthesized(meta, USAGE)?, &mut errors, |inner, errors| {
        let key = key(inner, &["max", "arg", "scope"], "`concurrency` option")?;
        match key.to_string().as_str() {
            "max" => max.set(&key, errors, || count(&value(inner, "`max = 1`")?, "`max`")),
            "arg" => arg.set(&key, errors, || {
                parameter(&value(inner, "`arg = parameter`")?)
            }),
            _ => scope.set(&key, errors, || {
                let scope = string(&value(inner, "`scope = \"name\"`")?, "`scope`")?;
                Ok(scope.value())
            }),
        }
    });
    errors.finish()?;
    let max = max
        .value
        .ok_or_else(|| meta.error("`concurrency(...)` needs a limit: `concurrency(max = 1)`"))?;
    Ok(Concurrency {
        max,
        arg: arg.value,
        scope: scope.value,
    })
}

/// `rate_limit(N, per = "1m", drop, arg = param)`.
pub(super) fn rate_limit(meta: &ParseNestedMeta) -> syn::Result<RateLimit> {
    const USAGE: &str = "`rate_limit(10, per = \"1m\")`";
    let (limit, rest) = (|input: ParseStream| {
        if !input.peek(LitInt) {
            return Err(input.error(format!(
                "`rate_limit` starts with the number of runs allowed per window: {USAGE}"
            )));
        }
        let limit: LitInt = input.parse()?;
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        Ok((limit, input.parse::<TokenStream>()?))
    })
    .parse2(parenthesized(meta, USAGE)?)?;
    let limit = count_literal(&limit, "the rate limit")?;
    let mut per = Once::new("per");
    let mut drop = Once::new("drop");
    let mut arg = Once::new("arg");
    let mut errors = Errors::default();
    keys(rest, &mut errors, |inner, errors| {
        let key = key(inner, &["per", "drop", "arg"], "`rate_limit` option")?;
        match key.to_string().as_str() {
            "per" => per.set(&key, errors, || {
                let window = value(inner, "`per = \"1m\"`")?;
                duration::parse_positive(&window, "the rate limit window")
            }),
            "drop" => drop.set(&key, errors, || flag(inner)),
            _ => arg.set(&key, errors, || {
                parameter(&value(inner, "`arg = parameter`")?)
            }),
        }
    });
    errors.finish()?;
    let per = per
        .value
        .ok_or_else(|| meta.error(format!("`rate_limit(...)` needs a window: {USAGE}")))?;
    Ok(RateLimit {
        limit,
        per,
        drop: drop.is_given(),
        arg: arg.value,
    })
}
