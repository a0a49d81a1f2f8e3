//! A worker binary of an application whose tasks live in a library crate: `main` names
//! the crate, which links it and serves its tasks.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker_with(docket::tasks!(fleet_tasks)).await
}
