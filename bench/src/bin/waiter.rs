//! `docket-bench-waiter`: the producer of the waiting scenario. It adds no-ops, awaits
//! every one's result on one handle, and reports the heap its waiters hold, counted by
//! an instrumented allocator (a program of its own so that no other figure pays for
//! the counting).

use std::alloc::System;
use std::process::ExitCode;

use docket_bench::child::{self, Mode, WORKER_USAGE, WorkerArgs};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes on the heap now.
fn heap_bytes() -> u64 {
    let stats = HEAP.stats();
    let held = stats.bytes_allocated as i128 - stats.bytes_deallocated as i128
        + stats.bytes_reallocated as i128;
    u64::try_from(held).unwrap_or(0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match WorkerArgs::parse(std::env::args().skip(1)) {
        Ok(Some(args)) if args.mode == Mode::Wait => args,
        Ok(Some(_)) => {
            eprintln!("error: docket-bench-waiter runs `--mode wait` only");
            return ExitCode::FAILURE;
        }
        Ok(None) => {
            print!("{WORKER_USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    match child::wait(args, heap_bytes).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
