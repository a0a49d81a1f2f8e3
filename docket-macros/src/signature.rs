//! Phase two: reading the function. Checks that it can be a task and sorts its
//! parameters into *data* (carried in the call) and *injected* (resolved per run).

use proc_macro2::{TokenStream, TokenTree};
use quote::{ToTokens, format_ident};
use syn::ext::IdentExt;
use syn::{Attribute, FnArg, Ident, ItemFn, Meta, Pat, Type};

use crate::errors::{Errors, display};

/// Types injected without `#[inject]`, by the last segment of their path.
pub(crate) const INJECTED: [&str; 12] = [
    "Execution",
    "TaskKey",
    "Docket",
    "WorkerInfo",
    "Retry",
    "Progress",
    "Perpetual",
    "Timeout",
    "Shared",
    "Depends",
    "Span",
    "TaskLogger",
];

/// One parameter of the task function.
pub(crate) struct Param {
    /// The name as written (`r#type` stays raw, so it can name a field).
    pub(crate) ident: Ident,
    /// The name on the wire and in messages (`type`).
    pub(crate) name: String,
    pub(crate) ty: Type,
    pub(crate) injected: bool,
}

/// Checks the function and reads its parameters, stripping the `#[inject]` and `#[arg]`
/// markers from `function` (which is emitted either way).
pub(crate) fn analyze(function: &mut ItemFn, errors: &mut Errors) -> Vec<Param> {
    check_signature(function, errors);
    let mut params = Vec::new();
    for input in &mut function.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                "`#[docket::task]` functions cannot take `self`; declare the task as a free function",
            )),
            FnArg::Typed(typed) => {
                let forced = take_marker(&mut typed.attrs, errors);
                let Some(ident) = plain_name(&typed.pat, errors) else {
                    continue;
                };
                let injected = forced.unwrap_or_else(|| injected_by_default(&typed.ty));
                check_type(&typed.ty, injected, errors);
                params.push(Param {
                    name: ident.unraw().to_string(),
                    ident,
                    ty: (*typed.ty).clone(),
                    injected,
                });
            }
        }
    }
    params
}

fn check_signature(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            "`#[docket::task]` functions must be `async fn`",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            "`#[docket::task]` functions cannot be `unsafe`",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "`#[docket::task]` functions cannot declare an ABI",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "`#[docket::task]` functions cannot be generic: a worker must know the concrete \
             types to deserialize a call",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "`#[docket::task]` functions cannot have a `where` clause",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "`#[docket::task]` functions cannot be variadic",
        ));
    }
}

/// Removes `#[inject]` / `#[arg]` from a parameter; `Some(true)` forces injection,
/// `Some(false)` forces data.
fn take_marker(attrs: &mut Vec<Attribute>, errors: &mut Errors) -> Option<bool> {
    let mut forced: Option<(bool, &'static str)> = None;
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        let marker = if attr.path().is_ident("inject") {
            (true, "inject")
        } else if attr.path().is_ident("arg") {
            (false, "arg")
        } else {
            kept.push(attr);
            continue;
        };
        if !matches!(attr.meta, Meta::Path(_)) {
            errors.push(syn::Error::new_spanned(
                &attr.meta,
                format!("`#[{}]` takes no arguments", marker.1),
            ));
        }
        match forced {
            None => forced = Some(marker),
            Some(first) if first.0 == marker.0 => errors.push(syn::Error::new_spanned(
                &attr,
                format!("duplicate `#[{}]`", marker.1),
            )),
            Some(first) => errors.push(syn::Error::new_spanned(
                &attr,
                format!(
                    "a parameter cannot be both `#[{}]` and `#[{}]`",
                    first.1, marker.1
                ),
            )),
        }
    }
    *attrs = kept;
    forced.map(|(injected, _)| injected)
}

/// `to` or `mut to`; patterns have no name to carry on the wire.
fn plain_name(pat: &Pat, errors: &mut Errors) -> Option<Ident> {
    match pat {
        Pat::Ident(binding) if binding.by_ref.is_none() && binding.subpat.is_none() => {
            Some(binding.ident.clone())
        }
        _ => {
            errors.push(syn::Error::new_spanned(
                pat,
                format!(
                    "`{}` is not a plain parameter name; `#[docket::task]` parameters must be \
                     names such as `to: String`",
                    display(pat)
                ),
            ));
            None
        }
    }
}

/// The last segment of a type's path: `Retry` for `docket::Retry`, `Shared` for
/// `Shared<Pool>`.
fn last_segment(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last().map(|s| &s.ident),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

fn injected_by_default(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|last| INJECTED.iter().any(|name| last == name))
}

/// Whether the function's return type is a `Result` (`Result<T, E>`, `io::Result<T>`,
/// `anyhow::Result<T>`...), by the last segment of its path.
pub(crate) fn is_result(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|last| last == "Result")
}

fn check_type(ty: &Type, injected: bool, errors: &mut Errors) {
    if let Type::ImplTrait(_) = ty {
        errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "`#[docket::task]` parameters need concrete types, found `{}`",
                display(ty)
            ),
        ));
    } else if !injected && borrows(ty.to_token_stream()) {
        errors.push(syn::Error::new_spanned(
            ty,
            format!(
                "task arguments are deserialized into owned values, but `{}` borrows; use an \
                 owned type (`String` rather than `&str`)",
                display(ty)
            ),
        ));
    }
}

/// Whether a type mentions a reference or a lifetime anywhere.
fn borrows(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Punct(punct) => matches!(punct.as_char(), '&' | '\''),
        TokenTree::Group(group) => borrows(group.stream()),
        TokenTree::Ident(_) | TokenTree::Literal(_) => false,
    })
}

/// `send_email` → `SendEmail`; `None` when no type name can be made from `name`.
pub(crate) fn pascal_case(name: &str) -> Option<String> {
    let mut pascal = String::with_capacity(name.len());
    for word in name.split('_').filter(|word| !word.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            pascal.extend(first.to_uppercase());
            pascal.push_str(chars.as_str());
        }
    }
    let starts_well = pascal.chars().next().is_some_and(char::is_alphabetic);
    starts_well.then_some(pascal)
}

/// The argument struct's name, spanned at the function's name so that "defined here"
/// notes point at the task.
pub(crate) fn struct_ident(function: &ItemFn) -> syn::Result<Ident> {
    let name = function.sig.ident.unraw().to_string();
    let ident = &function.sig.ident;
    match pascal_case(&name) {
        Some(pascal) => Ok(format_ident!("{pascal}", span = ident.span())),
        None => Err(syn::Error::new(
            ident.span(),
            format!(
                "cannot name the argument struct of `{name}`; name the task function in \
                 snake_case, such as `send_email` (which makes `SendEmail`)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn analyzed(mut function: ItemFn) -> (Vec<Param>, Vec<String>, ItemFn) {
        let mut errors = Errors::default();
        let params = analyze(&mut function, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        };
        (params, messages, function)
    }

    #[test]
    fn classifies_by_type_and_markers() {
        let (params, messages, function) = analyzed(parse_quote! {
            async fn f(
                to: String,
                retry: docket::Retry,
                shared: Shared<Pool>,
                #[inject] tenant: Tenant,
                #[arg] progress: Progress,
                #[allow(unused_mut)] mut count: u32,
            ) {}
        });
        assert!(messages.is_empty(), "{messages:?}");
        let kinds: Vec<(&str, bool)> = params
            .iter()
            .map(|p| (p.name.as_str(), p.injected))
            .collect();
        assert_eq!(
            kinds,
            [
                ("to", false),
                ("retry", true),
                ("shared", true),
                ("tenant", true),
                ("progress", false),
                ("count", false),
            ]
        );
        // The markers are gone from the emitted function; other attributes stay.
        let attrs: Vec<usize> = function
            .sig
            .inputs
            .iter()
            .map(|input| match input {
                FnArg::Typed(typed) => typed.attrs.len(),
                FnArg::Receiver(_) => unreachable!(),
            })
            .collect();
        assert_eq!(attrs, [0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn raw_names_are_unraw_on_the_wire() {
        let (params, _, _) = analyzed(parse_quote!(
            async fn f(r#type: String) {}
        ));
        assert_eq!(params[0].name, "type");
        assert_eq!(params[0].ident.to_string(), "r#type");
    }

    #[test]
    fn refuses_what_cannot_be_a_task() {
        let (_, messages, _) = analyzed(parse_quote!(
            fn f() {}
        ));
        assert_eq!(messages, ["`#[docket::task]` functions must be `async fn`"]);
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f<T>(t: T) {}
        ));
        assert!(messages[0].contains("cannot be generic"));
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f(&self) {}
        ));
        assert!(messages[0].contains("cannot take `self`"));
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f((a, b): (u8, u8)) {}
        ));
        assert_eq!(
            messages,
            [
                "`(a, b)` is not a plain parameter name; `#[docket::task]` parameters must be names \
              such as `to: String`"
            ]
        );
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f(name: &str, items: Vec<&'static str>) {}
        ));
        assert_eq!(messages.len(), 2);
        assert!(messages[0].contains("but `&str` borrows"));
        assert!(messages[1].contains("but `Vec<&'static str>` borrows"));
    }

    #[test]
    fn conflicting_markers() {
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f(
                #[inject]
                #[arg]
                x: X,
            ) {
            }
        ));
        assert_eq!(
            messages,
            ["a parameter cannot be both `#[inject]` and `#[arg]`"]
        );
        let (_, messages, _) = analyzed(parse_quote!(
            async fn f(#[inject(yes)] x: X) {}
        ));
        assert_eq!(messages, ["`#[inject]` takes no arguments"]);
    }

    #[test]
    fn result_returns() {
        for ty in [
            quote::quote!(Result<(), E>),
            quote::quote!(anyhow::Result<u8>),
            quote::quote!(std::io::Result<()>),
        ] {
            assert!(is_result(&syn::parse2(ty).unwrap()));
        }
        assert!(!is_result(&parse_quote!(Option<u8>)));
        assert!(!is_result(&parse_quote!(())));
    }

    #[test]
    fn pascal_case_of_function_names() {
        assert_eq!(pascal_case("send_email").as_deref(), Some("SendEmail"));
        assert_eq!(pascal_case("tidy").as_deref(), Some("Tidy"));
        assert_eq!(pascal_case("_private_task").as_deref(), Some("PrivateTask"));
        assert_eq!(pascal_case("sync_v2_data").as_deref(), Some("SyncV2Data"));
        assert_eq!(
            pascal_case("double__underscore").as_deref(),
            Some("DoubleUnderscore")
        );
        assert_eq!(pascal_case("été_chaud").as_deref(), Some("ÉtéChaud"));
        assert_eq!(pascal_case("__"), None);
        assert_eq!(pascal_case("_1st_run"), None);
    }

    #[test]
    fn struct_names() {
        let function: ItemFn = syn::parse_quote!(
            async fn r#type() {}
        );
        assert_eq!(struct_ident(&function).unwrap(), "Type");
        let function: ItemFn = syn::parse_quote!(
            async fn __() {}
        );
        assert!(
            struct_ident(&function)
                .unwrap_err()
                .to_string()
                .contains("snake_case")
        );
    }
}
