//! The way out on any error: every `compile_error!` found, and the function itself
//! (without its `#[inject]` / `#[arg]` markers), so editors keep their completions and
//! the rest of the crate still type-checks against it.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// The errors, followed by what the user wrote.
pub(crate) fn emit(error: &syn::Error, item: &impl ToTokens) -> TokenStream {
    let errors = error.to_compile_error();
    quote! {
        #errors
        #item
    }
}
