//! Phase one: parsing the attribute, `#[docket::task(retry = 3, timeout = "30s", ...)]`,
//! into [`Options`].
//!
//! Every key is optional and may be given once. A key whose value is wrong is reported
//! and skipped, so one build lists every mistake in the attribute.

mod lists;
mod values;

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, LitStr, Path, Token, token};

use self::lists::{concurrency, cron, perpetual, rate_limit};
use self::values::{crate_path, retry, string};
use crate::duration::{self, Duration};
use crate::errors::{Errors, choices, display};

/// The keys the attribute accepts, in the order the docs list them.
pub(crate) const KEYS: [&str; 11] = [
    "name",
    "crate",
    "retry",
    "timeout",
    "perpetual",
    "automatic",
    "cron",
    "concurrency",
    "debounce",
    "cooldown",
    "rate_limit",
];

const RETRY_FORMS: &str = "`retry = 3`, `retry = Fixed(3, 5s)`, \
     `retry = Exponential(5, 30s..10m)` or `retry = Forever(5s)`";

/// A setting that may be given at most once.
pub(crate) struct Once<T> {
    key: &'static str,
    span: Option<Span>,
    value: Option<T>,
}

impl<T> Once<T> {
    const fn new(key: &'static str) -> Self {
        Self {
            key,
            span: None,
            value: None,
        }
    }

    /// Records the setting written at `key`, parsing its value with `value`. A second
    /// occurrence is reported as a duplicate (its value is still checked, so its own
    /// mistakes show up too).
    fn set(
        &mut self,
        key: &Ident,
        errors: &mut Errors,
        value: impl FnOnce() -> syn::Result<T>,
    ) -> syn::Result<()> {
        let first = self.span.is_none();
        if first {
            self.span = Some(key.span());
        } else {
            errors.push(syn::Error::new(
                key.span(),
                format!("duplicate `{}`; each option may be given once", self.key),
            ));
        }
        let value = value()?;
        if first {
            self.value = Some(value);
        }
        Ok(())
    }

    /// The value, when the key was given with a valid value.
    pub(crate) fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// Where the key was first written, even if its value was invalid.
    pub(crate) fn span(&self) -> Option<Span> {
        self.span
    }

    /// Whether the key was written at all.
    pub(crate) fn is_given(&self) -> bool {
        self.span.is_some()
    }
}

/// `retry = ...`
#[derive(Debug, Clone)]
pub(crate) enum Retry {
    /// `retry = N`, `Fixed(N, delay)`, `Forever(delay)`.
    Fixed {
        attempts: Option<u32>,
        delay: Duration,
    },
    /// `Exponential(N, minimum..maximum)`, `Exponential(forever, minimum..maximum)`.
    Exponential {
        attempts: Option<u32>,
        minimum: Duration,
        maximum: Duration,
    },
}

/// `cron = "..."` or `cron(expr = "...", tz = "...")`.
#[derive(Debug)]
pub(crate) struct Cron {
    pub(crate) expression: String,
    pub(crate) time_zone: Option<String>,
}

/// `concurrency(max = N, arg = param, scope = "...")`.
#[derive(Debug)]
pub(crate) struct Concurrency {
    pub(crate) max: u32,
    pub(crate) arg: Option<Ident>,
    pub(crate) scope: Option<String>,
}

/// `rate_limit(N, per = "1m", drop, arg = param)`.
#[derive(Debug)]
pub(crate) struct RateLimit {
    pub(crate) limit: u32,
    pub(crate) per: Duration,
    pub(crate) drop: bool,
    pub(crate) arg: Option<Ident>,
}

/// Everything the attribute said.
pub(crate) struct Options {
    pub(crate) name: Once<LitStr>,
    pub(crate) krate: Once<Path>,
    pub(crate) retry: Once<Retry>,
    pub(crate) timeout: Once<Duration>,
    pub(crate) perpetual: Once<Duration>,
    /// `automatic`, bare or inside `perpetual(...)`.
    pub(crate) automatic: Once<()>,
    pub(crate) cron: Once<Cron>,
    pub(crate) concurrency: Once<Concurrency>,
    pub(crate) debounce: Once<Duration>,
    pub(crate) cooldown: Once<Duration>,
    pub(crate) rate_limit: Once<RateLimit>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            name: Once::new("name"),
            krate: Once::new("crate"),
            retry: Once::new("retry"),
            timeout: Once::new("timeout"),
            perpetual: Once::new("perpetual"),
            automatic: Once::new("automatic"),
            cron: Once::new("cron"),
            concurrency: Once::new("concurrency"),
            debounce: Once::new("debounce"),
            cooldown: Once::new("cooldown"),
            rate_limit: Once::new("rate_limit"),
        }
    }
}

/// Parses the attribute's arguments, recording every mistake in `errors`.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    keys(args, errors, |meta, errors| options.parse_key(meta, errors));
    options
}

/// Parses a comma-separated list of keys with `parse_key`. A key it fails on is
/// recorded and skipped, and the list goes on.
fn keys(
    tokens: TokenStream,
    errors: &mut Errors,
    mut parse_key: impl FnMut(&ParseNestedMeta, &mut Errors) -> syn::Result<()>,
) {
    let parser = syn::meta::parser(|meta| {
        if let Err(error) = parse_key(&meta, errors) {
            errors.push(error);
            skip_value(meta.input)?;
        }
        Ok(())
    });
    if let Err(error) = parser.parse2(tokens) {
        errors.push(error);
    }
}

/// The tokens inside `key(...)`, parsed on their own so a mistake inside cannot
/// unsettle the rest of the attribute.
fn parenthesized(meta: &ParseNestedMeta, usage: &str) -> syn::Result<TokenStream> {
    if meta.input.peek(token::Paren)
        && let TokenTree::Group(group) = meta.input.parse()?
    {
        return Ok(group.stream());
    }
    Err(meta.error(format!("expected {usage}")))
}

impl Options {
    fn parse_key(&mut self, meta: &ParseNestedMeta, errors: &mut Errors) -> syn::Result<()> {
        let key = key(meta, &KEYS, "option")?;
        match key.to_string().as_str() {
            "name" => self.name.set(&key, errors, || {
                let name = string(&value(meta, "`name = \"wire_name\"`")?, "`name`")?;
                if name.value().trim().is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "the task name cannot be empty",
                    ));
                }
                Ok(name)
            }),
            "crate" => self
                .krate
                .set(&key, errors, || crate_path(&value(meta, "`crate = path`")?)),
            "retry" => self
                .retry
                .set(&key, errors, || retry(&value(meta, RETRY_FORMS)?)),
            "timeout" => self.timeout.set(&key, errors, || {
                duration::parse_positive(&value(meta, "`timeout = \"30s\"`")?, "the timeout")
            }),
            "perpetual" => {
                let automatic = &mut self.automatic;
                self.perpetual
                    .set(&key, errors, || perpetual(meta, automatic))
            }
            "automatic" => self.automatic.set(&key, errors, || flag(meta)),
            "cron" => self.cron.set(&key, errors, || cron(meta)),
            "concurrency" => self.concurrency.set(&key, errors, || concurrency(meta)),
            "debounce" => self.debounce.set(&key, errors, || {
                duration::parse_positive(&value(meta, "`debounce = \"5s\"`")?, "the debounce")
            }),
            "cooldown" => self.cooldown.set(&key, errors, || {
                duration::parse_positive(&value(meta, "`cooldown = \"1m\"`")?, "the cooldown")
            }),
            _ => self.rate_limit.set(&key, errors, || rate_limit(meta)),
        }
    }
}

/// The key being parsed, if it is one of `valid`.
fn key(meta: &ParseNestedMeta, valid: &[&str], what: &str) -> syn::Result<Ident> {
    match meta.path.get_ident() {
        Some(ident) if valid.contains(&ident.to_string().as_str()) => Ok(ident.clone()),
        _ => Err(syn::Error::new_spanned(
            &meta.path,
            format!(
                "unknown {what} `{}`; expected {}",
                display(&meta.path),
                choices(valid)
            ),
        )),
    }
}

/// Skips what is left of a key that was reported, up to the next `,`.
fn skip_value(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// The value after `key =`; `usage` shows the key's form when there is no `=`.
fn value(meta: &ParseNestedMeta, usage: &str) -> syn::Result<Expr> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse()
    } else {
        Err(meta.error(format!("expected {usage}")))
    }
}

/// A key that stands alone, such as `automatic` or `drop`.
fn flag(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        Err(meta.error(format!(
            "`{}` is a flag and takes no value",
            display(&meta.path)
        )))
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn parse_ok(args: TokenStream) -> Options {
        let mut errors = Errors::default();
        let options = parse(args, &mut errors);
        if let Err(error) = errors.finish() {
            panic!("unexpected errors: {error}");
        }
        options
    }

    fn messages(args: TokenStream) -> Vec<String> {
        let mut errors = Errors::default();
        parse(args, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn nanos(duration: &Duration) -> u64 {
        duration.nanos
    }

    #[test]
    fn no_options() {
        let options = parse_ok(TokenStream::new());
        assert!(options.retry.get().is_none());
        assert!(!options.automatic.is_given());
    }

    #[test]
    fn name_and_crate() {
        let options = parse_ok(quote!(name = "mail.send", crate = my::docket));
        assert_eq!(options.name.get().unwrap().value(), "mail.send");
        assert_eq!(display(options.krate.get().unwrap()), "my::docket");
        let options = parse_ok(quote!(crate = "::renamed"));
        assert_eq!(display(options.krate.get().unwrap()), "::renamed");
    }

    #[test]
    fn retry_forms() {
        let retry = |args| parse_ok(args).retry.get().cloned().unwrap();
        let Retry::Fixed { attempts, delay } = retry(quote!(retry = 3)) else {
            panic!("not fixed");
        };
        assert_eq!((attempts, nanos(&delay)), (Some(3), 0));
        let Retry::Fixed { attempts, delay } = retry(quote!(retry = Fixed(4, 5s))) else {
            panic!("not fixed");
        };
        assert_eq!((attempts, nanos(&delay)), (Some(4), 5 * SECOND));
        let Retry::Fixed { attempts, delay } = retry(quote!(retry = Forever("1m"))) else {
            panic!("not fixed");
        };
        assert_eq!((attempts, nanos(&delay)), (None, 60 * SECOND));
        let Retry::Exponential {
            attempts,
            minimum,
            maximum,
        } = retry(quote!(retry = Exponential(5, 30s..10m)))
        else {
            panic!("not exponential");
        };
        assert_eq!(
            (attempts, nanos(&minimum), nanos(&maximum)),
            (Some(5), 30 * SECOND, 600 * SECOND)
        );
        let Retry::Exponential { attempts, .. } =
            retry(quote!(retry = Exponential(forever, 1s..1m)))
        else {
            panic!("not exponential");
        };
        assert_eq!(attempts, None);
    }

    #[test]
    fn schedules() {
        let options = parse_ok(quote!(perpetual = "1m", automatic));
        assert_eq!(nanos(options.perpetual.get().unwrap()), 60 * SECOND);
        assert!(options.automatic.is_given());

        let options = parse_ok(quote!(perpetual(every = 30s, automatic)));
        assert_eq!(nanos(options.perpetual.get().unwrap()), 30 * SECOND);
        assert!(options.automatic.is_given());

        let options = parse_ok(quote!(cron = "0 9 * * 1-5"));
        let cron = options.cron.get().unwrap();
        assert_eq!(
            (cron.expression.as_str(), cron.time_zone.as_deref()),
            ("0 9 * * 1-5", None)
        );

        let options = parse_ok(quote!(cron(expr = "@daily", tz = "Europe/Paris")));
        let cron = options.cron.get().unwrap();
        assert_eq!(
            (cron.expression.as_str(), cron.time_zone.as_deref()),
            ("@daily", Some("Europe/Paris"))
        );
    }

    #[test]
    fn admission_control() {
        let options = parse_ok(quote!(
            timeout = 2m,
            concurrency(max = 2, arg = customer_id, scope = "mail"),
            debounce = "5s",
            cooldown = 1.5s,
            rate_limit(10, per = "1m", drop, arg = customer_id),
        ));
        assert_eq!(nanos(options.timeout.get().unwrap()), 120 * SECOND);
        let concurrency = options.concurrency.get().unwrap();
        assert_eq!(concurrency.max, 2);
        assert_eq!(concurrency.arg.as_ref().unwrap(), "customer_id");
        assert_eq!(concurrency.scope.as_deref(), Some("mail"));
        assert_eq!(nanos(options.debounce.get().unwrap()), 5 * SECOND);
        assert_eq!(nanos(options.cooldown.get().unwrap()), 1_500_000_000);
        let rate = options.rate_limit.get().unwrap();
        assert_eq!(
            (rate.limit, nanos(&rate.per), rate.drop),
            (10, 60 * SECOND, true)
        );
        assert_eq!(rate.arg.as_ref().unwrap(), "customer_id");

        let options = parse_ok(quote!(concurrency(max = 1), rate_limit(3, per = 1s)));
        assert_eq!(options.concurrency.get().unwrap().arg, None);
        assert!(!options.rate_limit.get().unwrap().drop);
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        assert_eq!(
            messages(quote!(retries = 3)),
            [
                "unknown option `retries`; expected `name`, `crate`, `retry`, `timeout`, \
              `perpetual`, `automatic`, `cron`, `concurrency`, `debounce`, `cooldown` or `rate_limit`"
            ]
        );
        assert_eq!(
            messages(quote!(concurrency(maximum = 3))),
            ["unknown `concurrency` option `maximum`; expected `max`, `arg` or `scope`"]
        );
    }

    #[test]
    fn duplicates_are_reported_at_the_second_key() {
        assert_eq!(
            messages(quote!(retry = 3, timeout = 1s, retry = Forever(1s))),
            ["duplicate `retry`; each option may be given once"]
        );
        assert_eq!(
            messages(quote!(perpetual(every = 1m, automatic), automatic)),
            ["duplicate `automatic`; each option may be given once"]
        );
        assert_eq!(
            messages(quote!(concurrency(max = 1, max = 2))),
            ["duplicate `max`; each option may be given once"]
        );
    }

    #[test]
    fn every_mistake_is_reported() {
        assert_eq!(
            messages(quote!(
                timeout = 30,
                name = 5,
                retry = Linear(3),
                debounce = 0s
            )),
            [
                "invalid duration `30`: `30` has no unit; write a number with a unit (`ms`, `s`, \
                 `m`, `h` or `d`), such as `250ms`, `30s`, `1.5s`, `10m`, or a string such as `\"1h30m\"`",
                "`name` takes a string, found `5`",
                "unknown retry policy `Linear`; expected `Fixed`, `Exponential` or `Forever`",
                "the debounce `0s` must be longer than zero",
            ]
        );
    }

    #[test]
    fn value_mistakes() {
        let first = |args| messages(args).remove(0);
        assert_eq!(
            first(quote!(retry = Exponential(5, 10m..30s))),
            "the minimum delay `10m` is longer than the maximum delay `30s`"
        );
        assert_eq!(
            first(quote!(retry = 0)),
            "the number of attempts must be at least 1, found `0`"
        );
        assert_eq!(
            first(quote!(retry = Fixed(3s, 1s))),
            "the number of attempts is a plain number, found `3s`"
        );
        assert_eq!(
            first(quote!(timeout = "0s")),
            "the timeout `\"0s\"` must be longer than zero"
        );
        assert!(first(quote!(cron = "0 9 * *")).starts_with("invalid cron expression `0 9 * *`"));
        assert_eq!(
            first(quote!(automatic = true)),
            "`automatic` is a flag and takes no value"
        );
        assert_eq!(
            first(quote!(perpetual(automatic))),
            "`perpetual(...)` needs an interval: `perpetual(every = \"1m\")`"
        );
        assert_eq!(
            first(quote!(concurrency(arg = id))),
            "`concurrency(...)` needs a limit: `concurrency(max = 1)`"
        );
        assert_eq!(
            first(quote!(rate_limit(per = "1m"))),
            "`rate_limit` starts with the number of runs allowed per window: `rate_limit(10, per = \"1m\")`"
        );
        assert_eq!(first(quote!(timeout)), "expected `timeout = \"30s\"`");
        assert!(
            first(quote!(cron(expr = "@daily", tz = "Europe Paris"))).contains("`Europe Paris`")
        );
    }
}
