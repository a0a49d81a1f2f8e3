//! The standalone `docket` command: run workers (with the built-in tasks) and operate
//! dockets. `docket --help` lists the commands.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker_with(docket::tasks!(docket::worker::builtin)).await
}
