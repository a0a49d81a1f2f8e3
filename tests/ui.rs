//! Compile-time cases for `#[docket::task]`: what compiles, and the errors users see.

/// The `.stderr` files were produced by Rust 1.95; other compilers word errors differently.
#[rustversion::attr(not(stable(1.95)), ignore)]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/pass/*.rs");
    cases.compile_fail("ui/fail/*.rs");
}
