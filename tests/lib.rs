//! docket's test package: the end-to-end suite lives in `e2e/`, the compile-time cases in `ui/`.
