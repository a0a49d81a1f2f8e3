//! `docket-bench`: measures docket's throughput, latency, Redis commands per task and
//! memory, next to ceilings measured on the same Redis server in the same run, and
//! checks each figure against its target.
//!
//! ```sh
//! cargo run --release -p docket-bench -- --json target/bench.json
//! ```
//!
//! It starts its own `redis-server` (no persistence, loopback, a free port; killed on
//! exit) unless `--url` names one. Every scenario but the million-task one runs three
//! times; the table shows medians and ranges, the JSON every figure.

mod monitor;
mod report;
mod scale;
mod scenarios;
mod server;
mod timing;
mod workers;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use docket_bench::{child, stats};
use serde_json::{Value, json};

use crate::report::{Figure, Outcome};
use crate::scenarios::Bench;
use crate::server::Target;

/// Measures docket against ceilings of the same Redis server.
#[derive(Debug, Parser)]
#[command(name = "docket-bench")]
struct Cli {
    /// Write every figure, the targets and whether each is met to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Use this Redis server (`redis://host:port/db`) instead of starting one. It is not
    /// flushed: the bench uses fresh docket names, and resets its statistics.
    #[arg(long)]
    url: Option<String>,
    /// Divide every N by 10 (for development).
    #[arg(long)]
    quick: bool,
    /// Runs of each scenario (at least 3).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these scenarios (comma-separated: enqueue, drain, commands, latency,
    /// lateness, memory, scale, durable, waiting, dashboard, payload, fleet, admission,
    /// schedules), for development; the ceilings always run.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Spawn this build of docket-bench-worker as the worker process, instead of
    /// building it with `cargo build --release`: to measure a worker built another way.
    /// (The lean build is still made from source for scenario 6, unless `--no-lean`.)
    #[arg(long, value_name = "PATH")]
    worker_exe: Option<PathBuf>,
    /// Neither build nor measure the lean worker (docs/production.md, "Worker memory").
    #[arg(long)]
    no_lean: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // On Ctrl-C the bench is dropped: its redis-server and worker children die.
    let result = tokio::select! {
        result = bench(&cli) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one scenario, logging its start and duration to standard error.
async fn step<T>(what: &str, scenario: impl Future<Output = Result<T>>) -> Result<T> {
    eprintln!("[docket-bench] {what} ...");
    let started = Instant::now();
    let result = scenario.await.with_context(|| format!("scenario {what}"));
    eprintln!(
        "[docket-bench] {what}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    result
}

/// Runs the scenarios `--only` names (all by default), in the table's order.
async fn scenarios_wanted(
    cli: &Cli,
    bench: &mut Bench,
    ceilings: scenarios::Ceilings,
) -> Result<Vec<(&'static str, Outcome)>> {
    let wants = |name: &str| cli.wants(name);
    let mut outcomes: Vec<(&'static str, Outcome)> = Vec::new();
    let mut add_many_rate = 0.0;
    if wants("enqueue") {
        let enqueue = step("1 enqueue", scenarios::enqueue(bench, ceilings)).await?;
        add_many_rate = enqueue
            .figures
            .iter()
            .find(|f| f.key == "enqueue.add_many")
            .map_or(0.0, |f| f.summary.median);
        outcomes.push(("enqueue", enqueue));
    }
    if wants("drain") {
        let (drain, rss) = step("2 drain", scenarios::drain(bench, ceilings)).await?;
        outcomes.push(("drain", drain));
        outcomes.push(("worker_rss", rss));
    }
    if wants("commands") {
        let commands = step("5 commands", scenarios::commands(bench)).await?;
        outcomes.push(("commands", commands));
    }
    if wants("latency") {
        let latency = step("3 latency", timing::latency(bench)).await?;
        outcomes.push(("latency", latency));
    }
    if wants("lateness") {
        let lateness = step("4 lateness", timing::lateness(bench)).await?;
        outcomes.push(("lateness", lateness));
    }
    if wants("memory") {
        outcomes.push(("memory", step("7 memory://", scale::memory(bench)).await?));
    }
    if wants("scale") {
        let scale = step("8 scale", scale::scale(bench, add_many_rate)).await?;
        outcomes.push(("scale", scale));
    }
    if wants("durable") {
        let durable = step("10 durable", scenarios::durable(bench)).await?;
        outcomes.push(("durable", durable));
    }
    if wants("waiting") {
        let waiting = step("11 waiting", scenarios::waiting(bench)).await?;
        outcomes.push(("waiting", waiting));
    }
    if wants("dashboard") {
        let dashboard = step("12 dashboard", scenarios::dashboard(bench)).await?;
        outcomes.push(("dashboard", dashboard));
    }
    if wants("payload") {
        let payload = step("13 payload", scenarios::payload(bench)).await?;
        outcomes.push(("payload", payload));
    }
    if wants("fleet") {
        let fleet = step("14 fleet", scenarios::fleet(bench)).await?;
        outcomes.push(("fleet", fleet));
    }
    if wants("admission") {
        let admission = step("15 admission", scenarios::admission(bench)).await?;
        outcomes.push(("admission", admission));
    }
    if wants("schedules") {
        let schedules = step("16 schedules", scenarios::schedules(bench)).await?;
        outcomes.push(("schedules", schedules));
    }

    Ok(outcomes)
}

impl Cli {
    /// Whether `--only` leaves the scenario `name` in.
    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|only| only == name)
    }
}

/// The worker programs: `--worker-exe` or a `cargo build --release` of
/// `docket-bench-worker`, and its lean build when scenario 6 runs (unless `--no-lean`,
/// or the host cannot make one).
async fn build_workers(cli: &Cli) -> Result<(PathBuf, Option<PathBuf>)> {
    let plain = match &cli.worker_exe {
        Some(exe) => workers::checked(exe)?,
        None => step("building the worker", workers::plain()).await?,
    };
    if cli.no_lean || !cli.wants("drain") {
        return Ok((plain, None));
    }
    let lean = step("building the lean worker", async {
        Ok(workers::lean().await)
    })
    .await?;
    match lean {
        Ok(lean) => Ok((plain, Some(lean))),
        Err(why) => {
            eprintln!(
                "[docket-bench] no lean worker, so the RSS targets are judged on the plain \
                 build: {why}"
            );
            Ok((plain, None))
        }
    }
}

/// Starts (or connects to) the server, runs every scenario, prints the table and writes
/// the JSON.
async fn bench(cli: &Cli) -> Result<()> {
    if cli.runs < 3 {
        bail!("--runs must be at least 3");
    }
    let started = Instant::now();
    let date = chrono::Utc::now().to_rfc3339();
    // Declared first so that it is dropped (killed) last.
    let (_server, target) = if let Some(url) = &cli.url {
        (None, Target::parse(url, false)?)
    } else {
        let server = docket_testkit::RedisServer::builder().try_start()?;
        let target = Target::parse(&server.url(), true)?;
        (Some(server), target)
    };
    let workers = build_workers(cli).await?;
    let mut bench = Bench::new(target, workers, cli.runs, cli.quick).await?;
    let redis_version = server::info(&mut bench.admin, "server")
        .await?
        .get("redis_version")
        .cloned();
    let probe = bench.fresh_name("probe");
    let script_counting = server::script_calls_counted(&mut bench.admin, &probe).await?;

    let (ceilings, outcome) = step("ceilings", scenarios::ceilings(&mut bench)).await?;
    let mut outcomes = vec![("ceilings", outcome)];
    outcomes.extend(scenarios_wanted(cli, &mut bench, ceilings).await?);

    let mut figures: Vec<Figure> = outcomes
        .iter()
        .flat_map(|(_, outcome)| outcome.figures.clone())
        .collect();
    figures.sort_by_key(|f| f.scenario);
    let total = started.elapsed().as_secs_f64();
    println!("{}", report::table(&figures));
    let met = figures
        .iter()
        .filter_map(|f| f.target.as_ref())
        .filter(|c| c.met)
        .count();
    let checked = figures.iter().filter(|f| f.target.is_some()).count();
    println!(
        "targets met: {met} of {checked}; L = {:.0} cycles/s, RTT1 = {:.0} cmds/s; total {total:.0} s",
        ceilings.cycle, ceilings.rtt1
    );

    if let Some(path) = &cli.json {
        let details: serde_json::Map<String, Value> = outcomes
            .into_iter()
            .map(|(name, outcome)| (name.to_owned(), outcome.details))
            .collect();
        let document = json!({
            "command": format!("cargo run --release -p docket-bench -- {}", std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
            "argv": std::env::args().collect::<Vec<_>>(),
            "date": date,
            "total_seconds": total,
            "machine": report::machine(),
            "redis": {
                "version": redis_version,
                "url": bench.target.url,
                "started_by_bench": bench.target.owned,
                "script_calls_in_total_commands_processed": script_counting,
            },
            "settings": { "runs": cli.runs, "quick": cli.quick, "only": cli.only },
            "ceilings": { "L": ceilings.cycle, "RTT1": ceilings.rtt1 },
            "targets": report::targets(&figures),
            "figures": figures,
            "details": details,
        });
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
