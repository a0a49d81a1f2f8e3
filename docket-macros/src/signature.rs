//! Reading the function: which parameters are data and which are injected.

use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, Type};

/// Types injected by default, by the last segment of their path.
const INJECTED: &[&str] = &[
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

pub(crate) struct Param {
    pub ident: Ident,
    pub ty: Type,
    pub injected: bool,
}

fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        Type::Group(group) => last_segment(&group.elem),
        Type::Paren(paren) => last_segment(&paren.elem),
        _ => None,
    }
}

/// Reads the parameters, stripping `#[inject]` / `#[arg]` from `function`.
pub(crate) fn params(function: &mut ItemFn, errors: &mut Vec<syn::Error>) -> Vec<Param> {
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            "`#[docket::task]` functions must be `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "`#[docket::task]` functions cannot be generic",
        ));
    }
    let mut params = Vec::new();
    for input in &mut function.sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "`#[docket::task]` functions cannot take `self`",
                ));
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let mut forced = None;
        let mut kept = Vec::new();
        for attr in typed.attrs.drain(..) {
            let which = if attr.path().is_ident("inject") {
                Some(true)
            } else if attr.path().is_ident("arg") {
                Some(false)
            } else {
                None
            };
            match (which, forced) {
                (Some(_), Some(_)) => errors.push(syn::Error::new_spanned(
                    &attr,
                    "a parameter is either `#[inject]` or `#[arg]`, not both",
                )),
                (Some(w), None) => forced = Some(w),
                (None, _) => kept.push(attr),
            }
        }
        typed.attrs = kept;
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => pat.ident.clone(),
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    "task parameters must be plain names such as `user_id`",
                ));
                continue;
            }
        };
        let injected = forced.unwrap_or_else(|| {
            last_segment(&typed.ty).is_some_and(|last| INJECTED.contains(&last.as_str()))
        });
        params.push(Param {
            ident,
            ty: (*typed.ty).clone(),
            injected,
        });
    }
    params
}

/// `send_email` → `SendEmail`.
pub(crate) fn pascal_case(name: &str) -> String {
    name.trim_start_matches("r#")
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_of_snake_names() {
        assert_eq!(pascal_case("send_email"), "SendEmail");
        assert_eq!(pascal_case("sweep"), "Sweep");
        assert_eq!(pascal_case("_private_task"), "PrivateTask");
        assert_eq!(pascal_case("v2_sync"), "V2Sync");
    }

    #[test]
    fn classification_by_type_and_override() {
        let mut function: ItemFn = syn::parse_quote! {
            async fn f(a: String, retry: docket::Retry, #[inject] t: Tenant, #[arg] p: Progress) {}
        };
        let mut errors = Vec::new();
        let params = params(&mut function, &mut errors);
        assert!(errors.is_empty());
        let injected: Vec<bool> = params.iter().map(|p| p.injected).collect();
        assert_eq!(injected, [false, true, true, false]);
        // The markers are stripped from the emitted function.
        let FnArg::Typed(third) = &function.sig.inputs[2] else {
            unreachable!()
        };
        assert!(third.attrs.is_empty());
    }

    #[test]
    fn non_async_functions_are_refused() {
        let mut function: ItemFn = syn::parse_quote! { fn f() {} };
        let mut errors = Vec::new();
        params(&mut function, &mut errors);
        assert!(errors[0].to_string().contains("must be `async fn`"));
    }
}
