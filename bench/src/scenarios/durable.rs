//! Scenario 10, durable acknowledgements: what `?wait_replicas=1` costs. The same
//! sequential adds, batched adds and drain at concurrency 50, without and with every
//! add and every run's end waiting for one replica (`WAIT`), alternating in each run,
//! against a replica of the bench's server on loopback.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::json;

use super::TRACKED;
use super::context::Bench;
use super::drain::drain_once;
use crate::child::add_noops;
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, rate};

/// What the durable runs add to the URL.
const WAITED: &str = "wait_replicas=1&wait_timeout=1s";

/// Scenario 10: each rate waited for a replica, and its ratio to the same rate without.
pub(crate) async fn durable(bench: &mut Bench) -> Result<Outcome> {
    let _replica = replicate(bench).await?;
    let n = bench.n(5_000);
    let plain_url = bench.target.url.clone();
    let waited_url = format!(
        "{plain_url}{}{WAITED}",
        if plain_url.contains('?') { '&' } else { '?' }
    );
    let mut rates: [[Vec<f64>; 2]; 3] = Default::default();
    for run in 0..bench.runs {
        // Alternating which goes first, so that neither always meets a warmer server.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for waited in order {
            bench.target.url = if waited == 1 {
                waited_url.clone()
            } else {
                plain_url.clone()
            };
            let measured = measure(bench, n).await;
            bench.target.url.clone_from(&plain_url);
            let (add, add_many, drain) = measured?;
            rates[0][waited].push(add);
            rates[1][waited].push(add_many);
            rates[2][waited].push(drain);
        }
    }
    bench.clean().await?;
    let scenario = "10 durable";
    let mut figures = Vec::new();
    let mut details = serde_json::Map::new();
    for (index, (key, label)) in [
        ("add", format!("sequential add, N={n}")),
        ("add_many", format!("add_many in batches of 500, N={n}")),
        ("drain", "drain with states, concurrency 50".to_owned()),
    ]
    .into_iter()
    .enumerate()
    {
        let [plain, waited] = &rates[index];
        let ratios: Vec<f64> = plain.iter().zip(waited).map(|(p, w)| w / p).collect();
        figures.push(Figure::new(
            scenario,
            format!("durable.{key}"),
            format!("{label}, waiting for 1 replica"),
            "tasks/s",
            Summary::of(waited),
        ));
        figures.push(Figure::new(
            scenario,
            format!("durable.{key}.ratio"),
            format!("{label}: waiting for 1 replica ÷ not waiting"),
            "×",
            Summary::of(&ratios),
        ));
        details.insert(
            key.to_owned(),
            json!({ "plain": plain, "waited": waited, "ratios": ratios }),
        );
    }
    details.insert("query".to_owned(), json!(WAITED));
    Ok(Outcome {
        figures,
        details: serde_json::Value::Object(details),
    })
}

/// One of each measurement on the URL `bench.target.url` names now.
async fn measure(bench: &mut Bench, n: usize) -> Result<(f64, f64, f64)> {
    bench.clean().await?;
    let name = bench.fresh_name("durable-add");
    let producer = bench.producer(&name, TRACKED).await?;
    let started = Instant::now();
    for _ in 0..n {
        producer.add(crate::child::Noop::new()).await?;
    }
    let add = rate(n, started.elapsed());
    drop(producer);

    bench.clean().await?;
    let name = bench.fresh_name("durable-add-many");
    let producer = bench.producer(&name, TRACKED).await?;
    let started = Instant::now();
    add_noops(&producer, n, 500).await?;
    let add_many = rate(n, started.elapsed());
    drop(producer);

    let drained = drain_once(bench, None, 50, TRACKED, false).await?;
    Ok((add, add_many, drained.rate()))
}

/// A replica of the bench's server, started here when the bench owns the server (it
/// stops with the scenario); a server given by URL must have one already.
async fn replicate(bench: &mut Bench) -> Result<Option<docket_testkit::RedisServer>> {
    let replicas = |info: &std::collections::HashMap<String, String>| {
        info.get("connected_slaves")
            .and_then(|count| count.parse::<usize>().ok())
            .unwrap_or(0)
    };
    if replicas(&server::info(&mut bench.admin, "replication").await?) > 0 {
        return Ok(None);
    }
    if !bench.target.owned {
        bail!(
            "the server at {} has no replica to wait for",
            bench.target.url
        );
    }
    let port = bench.target.port.to_string();
    let mut builder = docket_testkit::RedisServer::builder().args([
        "--replicaof",
        bench.target.host.as_str(),
        port.as_str(),
    ]);
    if let Some(password) = &bench.target.password {
        builder = builder.args(["--masterauth", password.as_str()]);
    }
    let replica = builder.try_start()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = server::info(&mut bench.admin, "replication").await?;
        let online = info
            .get("slave0")
            .is_some_and(|slave| slave.contains("state=online"));
        if online {
            return Ok(Some(replica));
        }
        if Instant::now() > deadline {
            bail!("the replica did not come online within 30 s: {info:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
