//! Dependencies: a per-worker pool built once (`Shared<T>`), worker-level settings
//! given on the builder, and a per-run value resolved once however many parameters ask
//! for it (`Depends<T>`).
//!
//! ```sh
//! cargo run --example dependencies     # memory://; DOCKET_URL=redis://... for Redis
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use docket::{Depends, Docket, Execution, FromExecution, FromWorker, Shared, Worker, WorkerInfo};

/// A connection pool: built the first time a run needs it, closed when the worker stops.
struct Pool {
    size: usize,
    queries: AtomicU64,
}

impl FromWorker for Pool {
    async fn from_worker(worker: &WorkerInfo) -> Result<Self, String> {
        println!("opening a pool of {} connections", worker.concurrency());
        Ok(Pool {
            size: worker.concurrency(),
            queries: AtomicU64::new(0),
        })
    }

    async fn teardown(&self) {
        println!(
            "closing the pool after {} queries",
            self.queries.load(Ordering::SeqCst)
        );
    }
}

/// Settings the application hands to the worker.
struct Settings {
    greeting: &'static str,
}

impl FromWorker for Settings {}

/// The tenant of a run, read from its key (`tenant/...`).
#[derive(Clone)]
struct Tenant(String);

impl FromExecution for Tenant {
    type Rejection = String;

    async fn from_execution(execution: &Execution) -> Result<Self, String> {
        let (tenant, _) = execution
            .key()
            .split_once('/')
            .ok_or_else(|| format!("key `{}` names no tenant", execution.key()))?;
        Ok(Tenant(tenant.to_owned()))
    }
}

#[docket::task]
async fn welcome(
    user: String,
    pool: Shared<Pool>,
    settings: Shared<Settings>,
    tenant: Depends<Tenant>,
) -> String {
    pool.queries.fetch_add(1, Ordering::SeqCst);
    format!(
        "{} {user} of {} (pool of {})",
        settings.greeting, tenant.0, pool.size
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DOCKET_URL").unwrap_or_else(|_| "memory://dependencies".into());
    let docket = Docket::connect("dependencies-example", url).await?;
    let ada = docket
        .add(Welcome::new("ada".into()))
        .key("acme/welcome-ada")
        .await?;
    let bob = docket
        .add(Welcome::new("bob".into()))
        .key("globex/welcome-bob")
        .await?;
    let stray = docket
        .add(Welcome::new("eve".into()))
        .key("no-tenant")
        .await?;

    Worker::builder(docket.clone())
        .concurrency(4)
        .shared(Settings {
            greeting: "welcome",
        })
        .build()?
        .run_until_finished()
        .await?;
    println!("{}", ada.result().await?);
    println!("{}", bob.result().await?);
    // A dependency that cannot be resolved fails the run, naming the parameter.
    println!("{}", stray.result().await.unwrap_err());
    Ok(())
}
