//! The same worker binary written without naming the tasks crate: it depends on the
//! crate but never uses it, so the crate is not linked and the worker serves only the
//! built-in tasks (and says so when it starts).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker().await
}
