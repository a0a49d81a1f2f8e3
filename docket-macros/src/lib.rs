//! The `#[docket::task]` attribute. Use it through the `docket` crate, which re-exports
//! it and whose `__private` module the generated code calls.
//!
//! The macro works in phases: parse the attribute (`attr`), read the function
//! (`signature`), check the two together, then generate (`codegen`). On any error it
//! still emits the function unchanged, so editors and later errors stay sane.

mod attr;
mod codegen;
mod duration;
mod signature;

use proc_macro::TokenStream;
use quote::quote;
use syn::ItemFn;

/// Declares a docket task.
///
/// ```ignore
/// use docket::{Progress, Retry};
///
/// #[docket::task(retry = Exponential(5, 30s..10m), timeout = "2m")]
/// async fn send_email(to: String, subject: String, retry: Retry, progress: Progress)
///     -> Result<(), MailError> { /* ... */ }
///
/// docket.add(SendEmail::new(to, subject)).await?;
/// ```
///
/// The function stays as written. Beside it the macro generates a serializable argument
/// struct in `PascalCase` (`SendEmail`) holding the *data* parameters, with `new(...)`
/// taking them in order; its `docket::Task` implementation; a runner; and a registration
/// every worker discovers at startup.
///
/// Parameters whose type is `Execution`, `TaskKey`, `Docket`, `WorkerInfo`, `Retry`,
/// `Progress` (and the other built-in injectables) are *injected* per run; every other
/// parameter is data. `#[inject]` or `#[arg]` on a parameter overrides that.
///
/// A task returning a type whose last path segment is `Result` (`Result<T, E>`,
/// `anyhow::Result<T>`, ...) fails its run with the error; its result is `T`.
///
/// Options, each optional and given at most once:
///
/// | option | meaning |
/// |---|---|
/// | `name = "..."` | the wire name (default: the function name) |
/// | `retry = N`, `Fixed(N, 5s)`, `Exponential(N, 30s..10m)`, `Forever(5s)`, `Exponential(forever, 1s..1m)` | attempts in total and the delay between them |
/// | `timeout = "30s"` | fail a run that takes longer |
/// | `perpetual = "1m"` / `perpetual(every = "1m", automatic)` | run again after every run |
/// | `automatic` | workers seed the task at startup (no data parameters allowed) |
/// | `cron = "0 9 * * 1-5"` / `cron(expr = "...", tz = "Europe/Paris")` | run on a cron schedule |
/// | `concurrency(max = N, arg = param, scope = "...")` | cap concurrent runs |
/// | `debounce = "5s"`, `cooldown = "1m"`, `rate_limit(10, per = "1m", drop)` | admission control |
/// | `crate = path` | where the `docket` crate is, when renamed |
///
/// Durations are literals with a unit (`250ms`, `30s`, `1.5s`, `10m`, `2h`, `1d`) or
/// strings (`"1h30m"`).
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut function: ItemFn = match syn::parse(item) {
        Ok(function) => function,
        Err(error) => return error.to_compile_error().into(),
    };
    // A task must be `async` even when its body awaits nothing.
    function
        .attrs
        .push(syn::parse_quote!(#[allow(clippy::unused_async)]));
    let (options, mut errors) = attr::parse(args.into());
    let params = signature::params(&mut function, &mut errors);
    check(&options, &params, &mut errors);

    let expanded = if let Some(first) = errors.pop() {
        let combined = errors.into_iter().fold(first, |mut all, error| {
            all.combine(error);
            all
        });
        combined.to_compile_error()
    } else {
        let krate = options
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::docket));
        codegen::expand(&function, &params, &options, &krate)
    };
    quote!(#function #expanded).into()
}

/// Checks the options against the function.
fn check(options: &attr::Options, params: &[signature::Param], errors: &mut Vec<syn::Error>) {
    let data: Vec<&signature::Param> = params.iter().filter(|p| !p.injected).collect();
    if let Some(span) = options.automatic
        && options.perpetual.is_none()
        && options.cron.is_none()
    {
        errors.push(syn::Error::new(
            span,
            "`automatic` needs a schedule: add `perpetual = \"...\"` or `cron = \"...\"`",
        ));
    }
    let automatic_span = options.automatic.or(options.cron_span);
    if let (Some(span), Some(first)) = (automatic_span, data.first()) {
        let mut error = syn::Error::new(
            first.ident.span(),
            format!(
                "automatic tasks are started by workers and cannot take data arguments, but `{}` is one",
                first.ident
            ),
        );
        error.combine(syn::Error::new(
            span,
            "the task is automatic because of this",
        ));
        errors.push(error);
    }
    let limit_args = options
        .concurrency
        .as_ref()
        .and_then(|c| c.arg.as_ref())
        .into_iter()
        .chain(options.rate_limit.as_ref().and_then(|r| r.arg.as_ref()));
    for arg in limit_args {
        if !data.iter().any(|p| p.ident == *arg) {
            let names: Vec<String> = data.iter().map(|p| format!("`{}`", p.ident)).collect();
            let names = if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            };
            errors.push(syn::Error::new(
                arg.span(),
                format!(
                    "`{arg}` is not a data parameter of this task (its data parameters: {names})"
                ),
            ));
        }
    }
}
