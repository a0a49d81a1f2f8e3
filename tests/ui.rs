//! Compile-time cases of `#[docket::task]`: what must build and run (`ui/pass`), and what
//! must fail with a given error at a given place (`ui/fail`, each with its `.stderr`).
//!
//! The `.stderr` files were written by rustc 1.95 (regenerate with
//! `TRYBUILD=overwrite cargo test -p docket-tests --test ui`); another compiler words and
//! places its messages differently, so there the test reports "ignored".

#[test]
#[rustversion::attr(not(stable(1.95)), ignore)]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
