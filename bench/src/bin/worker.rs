//! `docket-bench-worker`: the worker process docket-bench spawns and measures (its
//! throughput, CPU and memory). It is a program of its own, a worker and the bench's
//! tasks and nothing else, as a deployed worker is.

use std::process::ExitCode;

use docket_bench::child::{self, WORKER_USAGE, WorkerArgs};

#[tokio::main]
async fn main() -> ExitCode {
    let args = match WorkerArgs::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{WORKER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match child::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
