//! Collecting every error the macro finds, so one build reports them all.

use std::fmt::Write as _;

use quote::ToTokens;

/// The errors found so far, combined into one [`syn::Error`].
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Records an error; it is reported along with every other one.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Records a last error and returns everything recorded.
    pub(crate) fn with(self, error: syn::Error) -> syn::Error {
        match self.0 {
            Some(mut all) => {
                all.combine(error);
                all
            }
            None => error,
        }
    }

    /// All the errors recorded, if any.
    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Tokens as a user wrote them, for messages: `Vec<&str>`, not `Vec < & str >`.
pub(crate) fn display(tokens: &impl ToTokens) -> String {
    let spaced = tokens.to_token_stream().to_string();
    let mut text = String::with_capacity(spaced.len());
    let mut words = spaced.split(' ').peekable();
    while let Some(word) = words.next() {
        text.push_str(word);
        if let Some(next) = words.peek() {
            let glued = ["::", "&", "<", "'", "#", ".."]
                .iter()
                .any(|end| word.ends_with(end))
                || ["::", "<", ">", ",", ";", ")", "]", "(", ".."]
                    .iter()
                    .any(|start| next.starts_with(start));
            if !glued {
                text.push(' ');
            }
        }
    }
    text
}

/// `` `a`, `b` or `c` `` for a list of choices.
pub(crate) fn choices(names: &[&str]) -> String {
    let mut text = String::new();
    for (index, name) in names.iter().enumerate() {
        let separator = match index {
            0 => "",
            _ if index + 1 == names.len() => " or ",
            _ => ", ",
        };
        let _ = write!(text, "{separator}`{name}`");
    }
    text
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    #[test]
    fn display_reads_like_source() {
        assert_eq!(display(&quote!(Vec<&str>)), "Vec<&str>");
        assert_eq!(display(&quote!(std::io::Result<()>)), "std::io::Result<()>");
        assert_eq!(display(&quote!(&'a mut T)), "&'a mut T");
        assert_eq!(display(&quote!(Fixed(3, 5s))), "Fixed(3, 5s)");
        assert_eq!(display(&quote!(30s..10m)), "30s..10m");
    }

    #[test]
    fn choices_read_as_a_sentence() {
        assert_eq!(choices(&["a"]), "`a`");
        assert_eq!(choices(&["a", "b"]), "`a` or `b`");
        assert_eq!(choices(&["a", "b", "c"]), "`a`, `b` or `c`");
    }

    #[test]
    fn errors_are_combined() {
        let mut errors = Errors::default();
        assert!(Errors::default().finish().is_ok());
        errors.push(syn::Error::new(proc_macro2::Span::call_site(), "first"));
        errors.push(syn::Error::new(proc_macro2::Span::call_site(), "second"));
        let messages: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }
}
