//! Phase four: generating the argument struct, its `Task` implementation, the runner and
//! the registration. Everything reaches the runtime through `<crate>::__private`.

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Ident, ItemFn, Path, ReturnType, Type};

use crate::attr::{Options, Retry};
use crate::duration::Duration;
use crate::signature::{Param, is_result};

/// Generates everything `function` needs to be a task; `function` is emitted as is.
pub(crate) fn expand(
    function: &ItemFn,
    params: &[Param],
    options: &Options,
    struct_ident: &Ident,
) -> TokenStream {
    let krate = options
        .krate
        .get()
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(::docket));
    let private = quote!(#krate::__private);
    let fn_name = function.sig.ident.unraw().to_string();
    let wire_name = options
        .name
        .get()
        .map_or(fn_name.clone(), syn::LitStr::value);

    let argument_struct = argument_struct(function, params, &krate, struct_ident, &fn_name);
    let task_options = task_options(&private, options);
    let output = match &function.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if is_result(ty) => {
            quote!(<#ty as #private::FallibleOutput>::Ok)
        }
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let runner = runner(function, params, &private, struct_ident);
    let data_names = params.iter().filter(|p| !p.injected).map(|p| &p.name);

    quote! {
        // The attribute is what requires `async`, so a task that never awaits is fine.
        #[allow(clippy::unused_async)]
        #function

        #argument_struct

        impl #private::Task for #struct_ident {
            const NAME: &'static str = #wire_name;
            const OPTIONS: #private::TaskOptions = #task_options;
            type Output = #output;
        }

        const _: () = {
            #runner

            #private::inventory::submit! {
                #private::TaskRegistration::new(
                    <#struct_ident as #private::Task>::NAME,
                    ::core::module_path!(),
                    &[#(#data_names),*],
                    <#struct_ident as #private::Task>::OPTIONS,
                    __docket_runner,
                )
            }
        };
    }
}

/// `SendEmail { pub to: String, ... }` with `new(...)`, serializable through the
/// runtime's serde so the user's crate needs no serde dependency.
fn argument_struct(
    function: &ItemFn,
    params: &[Param],
    krate: &Path,
    struct_ident: &Ident,
    fn_name: &str,
) -> TokenStream {
    let vis = &function.vis;
    let data: Vec<&Param> = params.iter().filter(|param| !param.injected).collect();
    let idents: Vec<&Ident> = data.iter().map(|param| &param.ident).collect();
    let types = data.iter().map(|param| &param.ty);
    let field_docs = data
        .iter()
        .map(|param| format!("The `{}` argument of [`{fn_name}`].", param.name));
    let struct_doc = format!(
        "The arguments of the docket task [`{fn_name}`]: a typed call, scheduled with \
         `docket.add({struct_ident}::new(...))`."
    );
    let new_doc = format!("A call to [`{fn_name}`] with these arguments.");
    let serde_crate = format!("{}::__private::serde", path_text(krate));
    let private = quote!(#krate::__private);
    // `new` is spanned at the function's name, where "defined here" notes then point.
    let new = Ident::new("new", function.sig.ident.span());
    let new_params = data.iter().map(|param| {
        let (ident, ty) = (&param.ident, &param.ty);
        quote!(#ident: #ty)
    });

    quote! {
        #[doc = #struct_doc]
        #[derive(#private::serde::Serialize, #private::serde::Deserialize)]
        #[serde(crate = #serde_crate)]
        #[allow(clippy::struct_excessive_bools, clippy::struct_field_names)]
        #vis struct #struct_ident {
            #(
                #[doc = #field_docs]
                pub #idents: #types,
            )*
        }

        #[allow(clippy::new_without_default)]
        impl #struct_ident {
            #[doc = #new_doc]
            #[must_use]
            #[allow(clippy::too_many_arguments)]
            pub fn #new(#(#new_params),*) -> Self {
                Self { #(#idents),* }
            }
        }
    }
}

/// `::docket`, `dk` or `some::path`, for `#[serde(crate = "...")]`.
fn path_text(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let prefix = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{prefix}{}", segments.join("::"))
}

/// The type-erased runner: arguments from the message, injected values from the run,
/// the call, and the result turned into what the worker stores.
fn runner(
    function: &ItemFn,
    params: &[Param],
    private: &TokenStream,
    struct_ident: &Ident,
) -> TokenStream {
    // Hygienic locals: a task or parameter named `execution` or `args` cannot clash.
    let execution = Ident::new("execution", Span::mixed_site());
    let args = Ident::new("args", Span::mixed_site());
    let has_data = params.iter().any(|param| !param.injected);
    let load_args = if has_data {
        quote!(let #args: #struct_ident = #private::arguments(&#execution)?;)
    } else {
        quote!(let _: #struct_ident = #private::arguments(&#execution)?;)
    };
    let call_args = params.iter().map(|param| {
        let (ident, ty, name) = (&param.ident, &param.ty, param.name.as_str());
        if param.injected {
            injection(private, ty, &execution, name)
        } else {
            quote!(#args.#ident)
        }
    });
    let fn_ident = &function.sig.ident;
    let call = quote!(#fn_ident(#(#call_args),*).await);
    let stored = match &function.sig.output {
        ReturnType::Type(_, ty) if is_result(ty) => quote!(#private::fallible(#call)),
        _ => quote!(#private::output(&#call)),
    };
    quote! {
        fn __docket_runner(#execution: #private::Execution) -> #private::RunFuture {
            #private::Box::pin(async move {
                #load_args
                #stored
            })
        }
    }
}

/// `inject(<T as FromExecution>::from_execution(&execution), &execution, "name").await?`
/// for an injected parameter of type `T`.
///
/// A type that does not implement `FromExecution` fails two obligations: the qualified
/// path's type, and the path expression calling through it (the future it returns is
/// then an error type, which silences everything downstream). rustc reports the first at
/// the user's type and the second at the expression, and prints both unless their spans
/// are equal. An expression's span runs from its first token to its last, so the
/// generated tokens before the type carry the span of the type's first token and those
/// after it the span of its last token: the expression then covers exactly the type, and
/// the error is printed once, there. (A stable proc macro cannot join two spans itself.)
fn injection(private: &TokenStream, ty: &Type, execution: &Ident, name: &str) -> TokenStream {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens
        .next()
        .map_or_else(Span::call_site, |token| token.span());
    let last = tokens.last().map_or(first, |token| token.span());
    let delimited = |inner: TokenStream| {
        let mut group = Group::new(Delimiter::Parenthesis, inner);
        group.set_span(last);
        group
    };
    let open = respan(quote!(<), first);
    let close = respan(quote!(as #private::FromExecution>::from_execution), last);
    let resolve_args = delimited(quote!(&#execution));
    let resolve = quote!(#open #ty #close #resolve_args);
    let inject = respan(quote!(#private::inject), first);
    let inject_args = delimited(quote!(#resolve, &#execution, #name));
    let tail = respan(quote!(.await?), last);
    quote!(#inject #inject_args #tail)
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            }
            token.set_span(span);
            token
        })
        .collect()
}

/// The `const` `TaskOptions` value: `TaskOptions::new().retry(...).timeout(...)...`.
fn task_options(private: &TokenStream, options: &Options) -> TokenStream {
    let duration = |duration: &Duration| duration_tokens(private, duration.nanos);
    let text = |text: Option<&str>| {
        text.map_or_else(
            || quote!(#private::None),
            |text| quote!(#private::Some(#text)),
        )
    };
    let mut calls = Vec::new();
    if let Some(retry) = options.retry.get() {
        let policy = match retry {
            Retry::Fixed { attempts, delay } => {
                let attempts = attempts_tokens(private, *attempts);
                let delay = duration(delay);
                quote!(#private::RetryPolicy::Fixed { attempts: #attempts, delay: #delay })
            }
            Retry::Exponential {
                attempts,
                minimum,
                maximum,
            } => {
                let attempts = attempts_tokens(private, *attempts);
                let (minimum, maximum) = (duration(minimum), duration(maximum));
                quote! {
                    #private::RetryPolicy::Exponential {
                        attempts: #attempts,
                        minimum: #minimum,
                        maximum: #maximum,
                    }
                }
            }
        };
        calls.push(quote!(retry(#policy)));
    }
    if let Some(timeout) = options.timeout.get() {
        let timeout = duration(timeout);
        calls.push(quote!(timeout(#timeout)));
    }
    if let Some(every) = options.perpetual.get() {
        let every = duration(every);
        calls.push(quote!(schedule(#private::Schedule::Every(#every))));
    }
    if let Some(cron) = options.cron.get() {
        let expression = &cron.expression;
        let time_zone = text(cron.time_zone.as_deref());
        calls.push(quote! {
            schedule(#private::Schedule::Cron { expression: #expression, time_zone: #time_zone })
        });
    }
    if options.automatic.is_given() || options.cron.is_given() {
        calls.push(quote!(automatic()));
    }
    if let Some(limit) = options.concurrency.get() {
        let max = Literal::u32_unsuffixed(limit.max);
        let arg = text(limit.arg.as_ref().map(arg_name).as_deref());
        let scope = text(limit.scope.as_deref());
        calls.push(quote! {
            concurrency(#private::ConcurrencyLimit { max: #max, arg: #arg, scope: #scope })
        });
    }
    if let Some(settle) = options.debounce.get() {
        let settle = duration(settle);
        calls.push(quote!(debounce(#settle)));
    }
    if let Some(window) = options.cooldown.get() {
        let window = duration(window);
        calls.push(quote!(cooldown(#window)));
    }
    if let Some(limit) = options.rate_limit.get() {
        let count = Literal::u32_unsuffixed(limit.limit);
        let per = duration(&limit.per);
        let drop = limit.drop;
        let arg = text(limit.arg.as_ref().map(arg_name).as_deref());
        calls.push(quote! {
            rate_limit(#private::RateLimit { limit: #count, per: #per, drop: #drop, arg: #arg })
        });
    }
    quote!(#private::TaskOptions::new() #(.#calls)*)
}

fn arg_name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

fn attempts_tokens(private: &TokenStream, attempts: Option<u32>) -> TokenStream {
    attempts.map_or_else(
        || quote!(#private::None),
        |count| {
            let count = Literal::u32_unsuffixed(count);
            quote!(#private::Some(#count))
        },
    )
}

/// The largest exact unit: `from_mins(10)`, `from_millis(1500)`, `Duration::ZERO`...
/// (as Clippy's `duration_suboptimal_units` asks of hand-written code).
fn duration_tokens(private: &TokenStream, nanos: u64) -> TokenStream {
    const UNITS: [(&str, u64); 5] = [
        ("from_hours", 3_600_000_000_000),
        ("from_mins", 60_000_000_000),
        ("from_secs", 1_000_000_000),
        ("from_millis", 1_000_000),
        ("from_micros", 1_000),
    ];
    if nanos == 0 {
        return quote!(#private::Duration::ZERO);
    }
    let (constructor, count) = UNITS
        .iter()
        .find(|(_, size)| nanos.is_multiple_of(*size))
        .map_or(("from_nanos", nanos), |(name, size)| (*name, nanos / size));
    let constructor = Ident::new(constructor, Span::call_site());
    let count = Literal::u64_unsuffixed(count);
    quote!(#private::Duration::#constructor(#count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        let private = quote!(p);
        let text = |nanos| duration_tokens(&private, nanos).to_string();
        assert_eq!(text(0), "p :: Duration :: ZERO");
        assert_eq!(text(86_400_000_000_000), "p :: Duration :: from_hours (24)");
        assert_eq!(text(600_000_000_000), "p :: Duration :: from_mins (10)");
        assert_eq!(text(90_000_000_000), "p :: Duration :: from_secs (90)");
        assert_eq!(text(1_500_000_000), "p :: Duration :: from_millis (1500)");
        assert_eq!(text(2_000), "p :: Duration :: from_micros (2)");
        assert_eq!(text(1_500), "p :: Duration :: from_nanos (1500)");
    }

    #[test]
    fn serde_crate_paths() {
        assert_eq!(path_text(&syn::parse_quote!(::docket)), "::docket");
        assert_eq!(path_text(&syn::parse_quote!(dk)), "dk");
        assert_eq!(
            path_text(&syn::parse_quote!(crate::vendored::docket)),
            "crate::vendored::docket"
        );
    }
}
