//! Scenario 1, enqueue: sequential `add` and `add_many` in batches of 500.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;

use super::TRACKED;
use super::context::{Bench, Ceilings};
use super::drain::redis_cpu_ms;
use crate::child::add_noops;
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::{Summary, count, rate};

/// Scenario 1, enqueue: sequential `add` and `add_many` in batches of 500.
pub(crate) async fn enqueue(bench: &mut Bench, ceilings: Ceilings) -> Result<Outcome> {
    let n = bench.n(20_000);
    let (mut sequential, mut batched) = (Vec::new(), Vec::new());
    let (mut client_cpu, mut redis_cpu) = (Vec::new(), Vec::new());
    let mut script_usec = Vec::new();
    let (mut many_client_cpu, mut many_redis_cpu) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        bench.clean().await?;
        let name = bench.fresh_name("add");
        let producer = bench.producer(&name, TRACKED).await?;
        let redis_before = redis_cpu_ms(&mut bench.admin).await?;
        let script_before = server::command_time(&mut bench.admin, "evalsha").await?;
        let client_before = crate::child::cpu_ms();
        let started = Instant::now();
        for _ in 0..n {
            producer.add(crate::child::Noop::new()).await?;
        }
        sequential.push(rate(n, started.elapsed()));
        let script_after = server::command_time(&mut bench.admin, "evalsha").await?;
        script_usec.push(script_after.usec_per_call_since(script_before));
        // Per add, in µs: this process (the adding loop and its connection) and Redis.
        client_cpu.push((crate::child::cpu_ms() - client_before) * 1e3 / count(n));
        redis_cpu.push((redis_cpu_ms(&mut bench.admin).await? - redis_before) * 1e3 / count(n));
        drop(producer);

        bench.clean().await?;
        let name = bench.fresh_name("add-many");
        let producer = bench.producer(&name, TRACKED).await?;
        let redis_before = redis_cpu_ms(&mut bench.admin).await?;
        let client_before = crate::child::cpu_ms();
        let started = Instant::now();
        add_noops(&producer, n, 500).await?;
        batched.push(rate(n, started.elapsed()));
        many_client_cpu.push((crate::child::cpu_ms() - client_before) * 1e3 / count(n));
        many_redis_cpu
            .push((redis_cpu_ms(&mut bench.admin).await? - redis_before) * 1e3 / count(n));
    }
    bench.clean().await?;
    let scenario = "1 enqueue";
    let figures = vec![
        Figure::new(
            scenario,
            "enqueue.add",
            format!("sequential add, N={n}"),
            "tasks/s",
            Summary::of(&sequential),
        )
        .at_least(0.8 * ceilings.rtt1, "≥ 0.8·RTT1"),
        Figure::new(
            scenario,
            "enqueue.add.client_cpu",
            "sequential add, client CPU per add (all threads)",
            "µs",
            Summary::of(&client_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add.redis_cpu",
            "sequential add, Redis CPU per add",
            "µs",
            Summary::of(&redis_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add.script_time",
            "sequential add, Redis time inside its EVALSHA (commandstats)",
            "µs",
            Summary::of(&script_usec),
        ),
        Figure::new(
            scenario,
            "enqueue.add_many",
            format!("add_many ×500, N={n}"),
            "tasks/s",
            Summary::of(&batched),
        )
        .at_least(1.6 * ceilings.cycle, "≥ 1.6·L"),
        Figure::new(
            scenario,
            "enqueue.add_many.client_cpu",
            "add_many ×500, client CPU per call (all threads)",
            "µs",
            Summary::of(&many_client_cpu),
        ),
        Figure::new(
            scenario,
            "enqueue.add_many.redis_cpu",
            "add_many ×500, Redis CPU per call",
            "µs",
            Summary::of(&many_redis_cpu),
        ),
    ];
    let details = json!({
        "tasks": n,
        "batch": 500,
        "add_vs_RTT1": Summary::of(&sequential).median / ceilings.rtt1,
        "add_many_vs_L": Summary::of(&batched).median / ceilings.cycle,
    });
    Ok(Outcome { figures, details })
}
