//! Phase three: checking the options against the function, for what neither phase can
//! see alone (an automatic task with data parameters, a limit keyed on a parameter that
//! does not exist, two schedules).

use syn::Ident;
use syn::ext::IdentExt;

use crate::attr::Options;
use crate::errors::{Errors, choices};
use crate::signature::Param;

/// Records every inconsistency between `options` and `params`.
pub(crate) fn check(options: &Options, params: &[Param], errors: &mut Errors) {
    if let (Some(_), Some(cron)) = (options.perpetual.span(), options.cron.span()) {
        errors.push(syn::Error::new(
            cron,
            "`perpetual` and `cron` cannot be combined; a task has one schedule",
        ));
    }
    if let Some(automatic) = options.automatic.span()
        && !options.perpetual.is_given()
        && !options.cron.is_given()
    {
        errors.push(syn::Error::new(
            automatic,
            "`automatic` needs a schedule: add `perpetual = \"1m\"` or `cron = \"...\"`",
        ));
    }
    check_automatic(options, params, errors);
    let limit_args = [
        options
            .concurrency
            .get()
            .and_then(|limit| limit.arg.as_ref()),
        options
            .rate_limit
            .get()
            .and_then(|limit| limit.arg.as_ref()),
    ];
    for arg in limit_args.into_iter().flatten() {
        check_arg(arg, params, errors);
    }
}

/// Workers start automatic tasks on their own, so nobody is there to pass arguments.
fn check_automatic(options: &Options, params: &[Param], errors: &mut Errors) {
    let why = if options.automatic.is_given() {
        "automatic tasks"
    } else if options.cron.is_given() {
        "cron tasks are automatic: they"
    } else {
        return;
    };
    if let Some(first) = params.iter().find(|param| !param.injected) {
        errors.push(syn::Error::new(
            first.ident.span(),
            format!(
                "{why} are started by workers and cannot take data arguments, but `{}` is one; \
                 remove it or mark it `#[inject]`",
                first.name
            ),
        ));
    }
}

/// `arg = ...` of a concurrency or rate limit must name a data parameter.
fn check_arg(arg: &Ident, params: &[Param], errors: &mut Errors) {
    let name = arg.unraw().to_string();
    let data: Vec<&str> = params
        .iter()
        .filter(|param| !param.injected)
        .map(|param| param.name.as_str())
        .collect();
    if data.contains(&name.as_str()) {
        return;
    }
    let injected = params
        .iter()
        .any(|param| param.injected && param.name == name);
    let detail = match (injected, data.is_empty()) {
        (true, _) => format!("`{name}` is injected, not a data parameter"),
        (false, true) => format!("`{name}` is not a parameter, and this task takes no data"),
        (false, false) => format!(
            "`{name}` is not a data parameter of this task; expected {}",
            choices(&data)
        ),
    };
    errors.push(syn::Error::new(arg.span(), detail));
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::ItemFn;

    use super::*;
    use crate::{attr, signature};

    fn messages(args: proc_macro2::TokenStream, mut function: ItemFn) -> Vec<String> {
        let mut errors = Errors::default();
        let options = attr::parse(args, &mut errors);
        let params = signature::analyze(&mut function, &mut errors);
        check(&options, &params, &mut errors);
        match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn consistent_options_pass() {
        let sweep: ItemFn = syn::parse_quote!(
            async fn sweep(execution: Execution) {}
        );
        assert!(messages(quote!(perpetual = 1m, automatic), sweep.clone()).is_empty());
        assert!(messages(quote!(cron = "@hourly"), sweep).is_empty());
        let send: ItemFn = syn::parse_quote!(
            async fn send(customer: u64, retry: Retry) {}
        );
        assert!(messages(quote!(concurrency(max = 1, arg = customer)), send.clone()).is_empty());
        assert!(messages(quote!(perpetual = 1m), send).is_empty());
    }

    #[test]
    fn automatic_tasks_take_no_data() {
        let send: ItemFn = syn::parse_quote!(
            async fn send(retry: Retry, to: String) {}
        );
        assert_eq!(
            messages(quote!(perpetual = 1m, automatic), send.clone()),
            [
                "automatic tasks are started by workers and cannot take data arguments, but `to` \
              is one; remove it or mark it `#[inject]`"
            ]
        );
        assert!(messages(quote!(cron = "@daily"), send)[0].starts_with("cron tasks are automatic"));
    }

    #[test]
    fn schedules_conflict() {
        let tidy: ItemFn = syn::parse_quote!(
            async fn tidy() {}
        );
        assert_eq!(
            messages(quote!(automatic), tidy.clone()),
            ["`automatic` needs a schedule: add `perpetual = \"1m\"` or `cron = \"...\"`"]
        );
        assert_eq!(
            messages(quote!(perpetual = 1m, cron = "@daily"), tidy),
            ["`perpetual` and `cron` cannot be combined; a task has one schedule"]
        );
    }

    #[test]
    fn limit_arguments_name_data_parameters() {
        let send: ItemFn = syn::parse_quote!(
            async fn send(to: String, subject: String, retry: Retry) {}
        );
        assert_eq!(
            messages(quote!(concurrency(max = 1, arg = customer)), send.clone()),
            ["`customer` is not a data parameter of this task; expected `to` or `subject`"]
        );
        assert_eq!(
            messages(quote!(rate_limit(1, per = 1s, arg = retry)), send),
            ["`retry` is injected, not a data parameter"]
        );
    }
}
