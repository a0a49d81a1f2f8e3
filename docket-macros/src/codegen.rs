//! Generating the argument struct, the `Task` impl, the runner and the registration.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, Path, ReturnType, Type};

use crate::attr::{Options, Retry};
use crate::signature::{Param, pascal_case};

/// Gives every token the user's span, so type errors in generated code point at the
/// user's tokens rather than at the attribute.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|tree| match tree {
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                TokenTree::Group(inner)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

fn duration(krate: &Path, nanos: u64) -> TokenStream {
    quote!(#krate::__private::Duration::from_nanos(#nanos))
}

fn some_str(krate: &Path, value: Option<&str>) -> TokenStream {
    value.map_or_else(
        || quote!(#krate::__private::None),
        |value| quote!(#krate::__private::Some(#value)),
    )
}

fn attempts(krate: &Path, attempts: Option<u32>) -> TokenStream {
    attempts.map_or_else(
        || quote!(#krate::__private::None),
        |n| quote!(#krate::__private::Some(#n)),
    )
}

/// The `const` `TaskOptions` expression.
fn options(krate: &Path, options: &Options) -> TokenStream {
    let p = quote!(#krate::__private);
    let mut out = quote!(#p::TaskOptions::new());
    if let Some(retry) = &options.retry {
        let policy = match retry {
            Retry::Fixed { attempts: n, delay } => {
                let (n, delay) = (attempts(krate, *n), duration(krate, *delay));
                quote!(#p::RetryPolicy::Fixed { attempts: #n, delay: #delay })
            }
            Retry::Exponential {
                attempts: n,
                minimum,
                maximum,
            } => {
                let (n, min, max) = (
                    attempts(krate, *n),
                    duration(krate, *minimum),
                    duration(krate, *maximum),
                );
                quote!(#p::RetryPolicy::Exponential { attempts: #n, minimum: #min, maximum: #max })
            }
        };
        out = quote!(#out.retry(#policy));
    }
    if let Some(timeout) = options.timeout {
        let d = duration(krate, timeout);
        out = quote!(#out.timeout(#d));
    }
    if let Some(every) = options.perpetual {
        let d = duration(krate, every);
        out = quote!(#out.schedule(#p::Schedule::Every(#d)));
    }
    if let Some(cron) = &options.cron {
        let expression = &cron.expression;
        let tz = some_str(krate, cron.time_zone.as_deref());
        out = quote!(#out.schedule(#p::Schedule::Cron { expression: #expression, time_zone: #tz }).automatic());
    }
    if options.automatic.is_some() && options.cron.is_none() {
        out = quote!(#out.automatic());
    }
    if let Some(limit) = &options.concurrency {
        let max = limit.max;
        let arg = some_str(
            krate,
            limit.arg.as_ref().map(ToString::to_string).as_deref(),
        );
        let scope = some_str(krate, limit.scope.as_deref());
        out =
            quote!(#out.concurrency(#p::ConcurrencyLimit { max: #max, arg: #arg, scope: #scope }));
    }
    if let Some(settle) = options.debounce {
        let d = duration(krate, settle);
        out = quote!(#out.debounce(#d));
    }
    if let Some(window) = options.cooldown {
        let d = duration(krate, window);
        out = quote!(#out.cooldown(#d));
    }
    if let Some(rate) = &options.rate_limit {
        let (limit, per, drop) = (rate.limit, duration(krate, rate.per), rate.drop);
        let arg = some_str(krate, rate.arg.as_ref().map(ToString::to_string).as_deref());
        out = quote!(#out.rate_limit(#p::RateLimit { limit: #limit, per: #per, drop: #drop, arg: #arg }));
    }
    out
}

/// Whether the function returns a `Result` (by the last segment of its return type).
fn returns_result(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Result"),
        Type::Group(group) => returns_result(&group.elem),
        _ => false,
    }
}

pub(crate) fn expand(
    function: &ItemFn,
    params: &[Param],
    options_in: &Options,
    krate: &Path,
) -> TokenStream {
    let p = quote!(#krate::__private);
    let vis = &function.vis;
    let fn_ident = &function.sig.ident;
    let struct_ident = format_ident!(
        "{}",
        pascal_case(&fn_ident.to_string()),
        span = fn_ident.span()
    );
    let wire_name = options_in
        .name
        .as_ref()
        .map_or_else(|| fn_ident.to_string(), syn::LitStr::value);
    let serde_crate = format!(
        "{}::__private::serde",
        quote!(#krate).to_string().replace(' ', "")
    );

    let data: Vec<&Param> = params.iter().filter(|param| !param.injected).collect();
    let data_idents: Vec<_> = data.iter().map(|param| &param.ident).collect();
    let data_types: Vec<_> = data.iter().map(|param| &param.ty).collect();
    let data_names: Vec<String> = data_idents.iter().map(ToString::to_string).collect();

    let (output, convert) = match &function.sig.output {
        ReturnType::Default => (quote!(()), quote!(#p::output(&__value))),
        ReturnType::Type(_, ty) if returns_result(ty) => (
            quote!(<#ty as #p::FallibleOutput>::Ok),
            quote!(#p::fallible(__value)),
        ),
        ReturnType::Type(_, ty) => (quote!(#ty), quote!(#p::output(&__value))),
    };

    let resolve = params.iter().map(|param| {
        let ident = &param.ident;
        let ty = &param.ty;
        if param.injected {
            let name = ident.to_string();
            respan(
                quote!(let #ident: #ty = #p::inject::<#ty>(&__execution, #name).await?;),
                ty.span(),
            )
        } else {
            quote!(let #ident: #ty = __args.#ident;)
        }
    });
    let call_args = params.iter().map(|param| &param.ident);
    let task_options = options(krate, options_in);
    let struct_doc = format!(
        "The arguments of the docket task [`{fn_ident}`]: `docket.add({struct_ident}::new(...))`."
    );
    let new_fn = quote_spanned!(fn_ident.span()=> fn new);
    let new_doc = format!("A call to [`{fn_ident}`] with these arguments.");

    quote! {
        #[doc = #struct_doc]
        #[derive(#p::serde::Serialize, #p::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        #[allow(clippy::struct_field_names)]
        #vis struct #struct_ident {
            #(
                #[allow(missing_docs)]
                pub #data_idents: #data_types,
            )*
        }

        impl #struct_ident {
            #[doc = #new_doc]
            #[allow(clippy::too_many_arguments, clippy::new_without_default, clippy::must_use_candidate)]
            #vis #new_fn(#(#data_idents: #data_types),*) -> Self {
                Self { #(#data_idents),* }
            }
        }

        impl #p::Task for #struct_ident {
            const NAME: &'static str = #wire_name;
            const OPTIONS: #p::TaskOptions = #task_options;
            type Output = #output;
        }

        const _: () = {
            #[allow(unused_variables, clippy::used_underscore_binding, clippy::unused_async)]
            fn __docket_runner(__execution: #p::Execution) -> #p::RunFuture {
                #p::Box::pin(async move {
                    let __args: #struct_ident = #p::arguments(&__execution)?;
                    #(#resolve)*
                    let __value = #fn_ident(#(#call_args),*).await;
                    #convert
                })
            }

            #p::inventory::submit! {
                #p::TaskRegistration::new(
                    #wire_name,
                    ::core::module_path!(),
                    &[#(#data_names),*],
                    <#struct_ident as #p::Task>::OPTIONS,
                    __docket_runner,
                )
            }
        };
    }
}
