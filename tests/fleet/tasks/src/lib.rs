//! The tasks of an application that keeps them in a library crate of its own, as most
//! do: the web app that adds calls and the worker binary both depend on it.

use docket::WorkerInfo;

/// Greets `name`, saying which worker ran it.
#[docket::task]
pub async fn fleet_greet(name: String, worker: WorkerInfo) -> String {
    format!("hello {name} from {}", worker.name())
}

/// Doubles `n`, saying which worker ran it.
#[docket::task]
pub async fn fleet_double(n: u64, worker: WorkerInfo) -> (u64, String) {
    (n * 2, worker.name().to_owned())
}
