//! The `#[docket::task]` attribute. Use it through the `docket` crate, which re-exports
//! it and whose `__private` module the generated code calls.
//!
//! The macro runs in phases: parse the attribute (`attr`), read the function
//! (`signature`), check the two against each other (`validate`), then generate
//! (`codegen`). Every phase records its errors instead of stopping at the first; if
//! there is any, the `fallback` emits them all beside the function as written.

mod attr;
mod codegen;
mod cron;
mod duration;
mod errors;
mod fallback;
mod signature;
mod validate;

use proc_macro::TokenStream;
use syn::{Ident, Item, ItemFn};

use crate::attr::Options;
use crate::errors::Errors;
use crate::signature::Param;

/// Declares a docket task: an `async fn` that workers run, with a typed call to schedule
/// it.
///
/// ```
/// use docket::{Progress, Retry};
///
/// #[docket::task(retry = Exponential(5, 30s..10m), timeout = "2m")]
/// pub async fn send_email(
///     to: String,
///     subject: String,
///     retry: Retry,
///     progress: Progress,
/// ) -> Result<(), String> {
///     progress.set_message(format!("attempt {}", retry.attempt())).await.map_err(|e| e.to_string())?;
///     println!("mailing {to}: {subject}");
///     Ok(())
/// }
///
/// # async fn schedule(docket: &docket::Docket) -> docket::Result<()> {
/// // The function stays callable; the call is typed.
/// docket.add(SendEmail::new("ada@example.com".into(), "hello".into())).await?;
/// # Ok(())
/// # }
/// ```
///
/// # What it generates
///
/// Beside the function, which stays as written:
///
/// * a struct named after the function in `PascalCase` (`send_email` → `SendEmail`), with
///   the same visibility, holding the *data* parameters as public fields, and a
///   `new(...)` constructor taking them in order. It is serializable through docket's own
///   serde, so your crate needs no serde dependency;
/// * its `docket::Task` implementation: the wire name, the options below, and the output
///   type (`T` for a function returning `Result<T, E>` or an alias such as
///   `anyhow::Result<T>`, otherwise the return type);
/// * a runner and a registration, so every worker linked with the function can run it
///   without any `register` call.
///
/// # Parameters
///
/// A parameter is *injected* (resolved by the worker for each run) when the last segment
/// of its type is `Execution`, `TaskKey`, `Docket`, `WorkerInfo`, `Retry`, `Progress`,
/// `Perpetual`, `Timeout`, `Shared`, `Depends`, `Span` (the run's `tracing::Span`) or
/// `TaskLogger`; every other parameter is *data*, carried in the call. Mark a parameter
/// `#[inject]` to inject a type of your own (it must implement `docket::FromExecution`),
/// or `#[arg]` to carry a type with one of those names as data.
///
/// ```
/// use docket::{Execution, FromExecution};
///
/// struct Tenant(String);
///
/// impl FromExecution for Tenant {
///     type Rejection = std::convert::Infallible;
///
///     async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
///         Ok(Tenant(execution.key().split('/').next().unwrap_or_default().to_owned()))
///     }
/// }
///
/// #[docket::task]
/// async fn rebuild_index(shard: u32, #[inject] tenant: Tenant) {
///     println!("rebuilding shard {shard} of {}", tenant.0);
/// }
///
/// let _call = RebuildIndex::new(7);
/// ```
///
/// Parameters must be plain names (`to` or `mut to`) of owned types; the function
/// cannot be generic or take `self`.
///
/// # Options
///
/// Every option may be given at most once, in any order.
///
/// | option | meaning |
/// |---|---|
/// | `name = "wire_name"` | the name calls travel under (default: the function's name) |
/// | `retry = 3` | 3 attempts in total (the first run counts), no delay |
/// | `retry = Fixed(3, 5s)` | 3 attempts, 5 seconds apart |
/// | `retry = Exponential(5, 30s..10m)` | 5 attempts; delays double from 30 seconds up to 10 minutes |
/// | `retry = Forever(5s)`, `retry = Exponential(forever, 1s..1m)` | unlimited attempts |
/// | `timeout = "2m"` | fail a run that takes longer (retries apply) |
/// | `perpetual = "1m"`, `perpetual(every = "1m", automatic)` | run again one minute after each run started |
/// | `automatic` | workers start the task themselves; needs `perpetual` and no data parameters |
/// | `cron = "0 9 * * 1-5"`, `cron(expr = "0 9 * * 1-5", tz = "Europe/Paris")` | run on a cron schedule (5 fields, or `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`); cron tasks are automatic |
/// | `concurrency(max = 1)`, `concurrency(max = 2, arg = customer_id, scope = "billing")` | at most `max` runs at once, per task or per value of a data parameter |
/// | `debounce = "5s"` | run once, after calls have stopped for 5 seconds |
/// | `cooldown = "1m"` | drop calls within a minute of the last run |
/// | `rate_limit(10, per = "1m")`, `rate_limit(10, per = "1m", drop, arg = customer_id)` | at most 10 runs a minute; later calls wait, or are dropped with `drop` |
/// | `crate = path`, `crate = "path"` | where the `docket` crate is, if renamed |
///
/// Durations are numbers with a unit, `ms`, `s`, `m`, `h` or `d` (`250ms`, `30s`,
/// `1.5s`, `10m`, `2h`, `1d`), or strings of one or more such parts, largest unit first
/// (`"1h30m"`). A bare number has no unit and is refused, as is a clock (`"01:30"`).
///
/// ```
/// #[docket::task(perpetual = "1m", automatic, timeout = 30s)]
/// async fn sweep_expired(execution: docket::Execution) -> anyhow::Result<()> {
///     println!("sweeping, run {}", execution.key());
///     Ok(())
/// }
///
/// #[docket::task(cron(expr = "0 9 * * 1-5", tz = "Europe/Paris"), retry = Fixed(3, 1m))]
/// async fn morning_report() {}
///
/// #[docket::task(concurrency(max = 1, arg = customer_id), rate_limit(100, per = "1h"))]
/// async fn charge(customer_id: u64, cents: u64) -> Result<String, String> {
///     Ok(format!("charged {customer_id} {cents}"))
/// }
///
/// assert_eq!(<Charge as docket::Task>::OPTIONS.concurrency.unwrap().max, 1);
/// ```
///
/// # Errors
///
/// Mistakes are compile errors at the offending tokens: an unknown or repeated option,
/// a malformed duration or cron expression, a function that is not `async`, an
/// automatic task with data parameters, a parameter type that cannot be injected, a call
/// `SendEmail::new(...)` with wrong arguments.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), &item.into()).into()
}

fn expand(
    args: proc_macro2::TokenStream,
    item: &proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut function: ItemFn = match syn::parse2(item.clone()) {
        Ok(Item::Fn(function)) => function,
        Ok(other) => {
            let error =
                syn::Error::new_spanned(other, "`#[docket::task]` applies to an `async fn`");
            return fallback::emit(&error, item);
        }
        Err(error) => return fallback::emit(&error, item),
    };
    match analyze(args, &mut function) {
        Ok((options, params, struct_ident)) => {
            codegen::expand(&function, &params, &options, &struct_ident)
        }
        Err(error) => fallback::emit(&error, &function),
    }
}

/// Parses and checks everything, collecting every error; strips the parameter markers
/// from `function` either way.
fn analyze(
    args: proc_macro2::TokenStream,
    function: &mut ItemFn,
) -> syn::Result<(Options, Vec<Param>, Ident)> {
    let mut errors = Errors::default();
    let options = attr::parse(args, &mut errors);
    let params = signature::analyze(function, &mut errors);
    validate::check(&options, &params, &mut errors);
    let struct_ident = match signature::struct_ident(function) {
        Ok(ident) => ident,
        Err(error) => return Err(errors.with(error)),
    };
    errors.finish()?;
    Ok((options, params, struct_ident))
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn expanded(args: proc_macro2::TokenStream, item: &proc_macro2::TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn generates_struct_task_runner_and_registration() {
        let code = expanded(
            quote!(retry = Exponential(5, 30s..10m), timeout = "2m"),
            &quote! {
                pub async fn send_email(to: String, #[arg] subject: String, retry: Retry) -> Result<(), E> {}
            },
        );
        for expected in [
            "pub async fn send_email (to : String , subject : String , retry : Retry)",
            "pub struct SendEmail",
            "pub to : String",
            "pub fn new (to : String , subject : String) -> Self",
            "const NAME : & 'static str = \"send_email\"",
            "RetryPolicy :: Exponential { attempts : :: docket :: __private :: Some (5) , \
             minimum : :: docket :: __private :: Duration :: from_secs (30) , \
             maximum : :: docket :: __private :: Duration :: from_mins (10) , }",
            ". timeout (:: docket :: __private :: Duration :: from_mins (2))",
            "type Output = < Result < () , E > as :: docket :: __private :: FallibleOutput > :: Ok",
            ":: docket :: __private :: inject (< Retry as :: docket :: __private :: FromExecution > \
             :: from_execution (& execution) , & execution , \"retry\") . await ?",
            ":: docket :: __private :: fallible (send_email (args . to , args . subject ,",
            "& [\"to\" , \"subject\"]",
            "# [serde (crate = \"::docket::__private::serde\")]",
        ] {
            assert!(code.contains(expected), "missing `{expected}` in:\n{code}");
        }
        assert!(!code.contains("compile_error"));
    }

    #[test]
    fn crate_path_and_plain_outputs() {
        let code = expanded(
            quote!(crate = dk, name = "tidy.up"),
            &quote!(
                async fn tidy() -> u8 {
                    1
                }
            ),
        );
        for expected in [
            "struct Tidy { }",
            "dk :: __private :: Task for Tidy",
            "const NAME : & 'static str = \"tidy.up\"",
            "type Output = u8",
            "let _ : Tidy = dk :: __private :: arguments (& execution) ?",
            "dk :: __private :: output (& tidy () . await)",
            "# [serde (crate = \"dk::__private::serde\")]",
        ] {
            assert!(code.contains(expected), "missing `{expected}` in:\n{code}");
        }
        assert!(!code.contains(":: docket"), "{code}");
    }

    #[test]
    fn errors_come_with_the_function_without_markers() {
        let code = expanded(
            quote!(retries = 3, timeout = 30),
            &quote!(
                async fn f(#[inject] tenant: Tenant, to: String) {}
            ),
        );
        assert_eq!(code.matches("compile_error").count(), 2, "{code}");
        assert!(
            code.contains("async fn f (tenant : Tenant , to : String) { }"),
            "{code}"
        );
        assert!(!code.contains("struct"), "{code}");
    }

    #[test]
    fn non_functions_are_refused_and_kept() {
        let code = expanded(
            quote!(),
            &quote!(
                struct NotATask;
            ),
        );
        assert!(code.contains("applies to an `async fn`"));
        assert!(code.contains("struct NotATask ;"));
    }
}
