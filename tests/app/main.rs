//! An application binary as users write one: its own tasks, and `main` handing the
//! command line to docket. The end-to-end suite drives it as a real process.

/// Records a greeting; the suite checks it ran through the worker command.
#[docket::task(name = "app_greet")]
async fn greet(name: String) -> String {
    format!("hello, {name}")
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    docket::run_worker().await
}
