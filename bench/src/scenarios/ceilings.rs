//! The ceilings every docket figure is a ratio to: `L` (the cycle script under 50
//! clients), `RTT1` (sequential `SET` from one redis-rs connection), and
//! `redis-benchmark -c 1` for reference.

use anyhow::Result;
use serde_json::json;

use super::context::{Bench, Ceilings};
use crate::report::{Figure, Outcome};
use crate::server;
use crate::stats::Summary;

/// Ceilings: `L` (the cycle script under 50 clients), `RTT1` (sequential `SET` from one
/// redis-rs connection) and `redis-benchmark -c 1` for reference.
pub(crate) async fn ceilings(bench: &mut Bench) -> Result<(Ceilings, Outcome)> {
    let (mut cycle, mut rtt1, mut reference) = (Vec::new(), Vec::new(), Vec::new());
    let (mut rtt1_cpu, mut rtt1_usec) = (Vec::new(), Vec::new());
    for _ in 0..bench.runs {
        let stream = format!("{}:ceiling-stream", bench.fresh_name("ceiling"));
        let target = bench.target.clone();
        let requests = bench.n(200_000);
        cycle.push(server::cycle_ceiling(&target, &mut bench.admin, &stream, "v", requests).await?);
        let key = format!("{}:rtt1", bench.fresh_name("ceiling"));
        let set_before = server::command_time(&mut bench.admin, "set").await?;
        let (rate, cpu) = server::single_client_rate(&target, &key, bench.n(20_000)).await?;
        let set_after = server::command_time(&mut bench.admin, "set").await?;
        rtt1.push(rate);
        rtt1_cpu.push(cpu);
        rtt1_usec.push(set_after.usec_per_call_since(set_before));
        reference.push(server::benchmark_single_client(&target, &key, bench.n(50_000)).await?);
    }
    let (cycle, rtt1, reference) = (
        Summary::of(&cycle),
        Summary::of(&rtt1),
        Summary::of(&reference),
    );
    let ceilings = Ceilings {
        cycle: cycle.median,
        rtt1: rtt1.median,
    };
    let scenario = "0 ceiling";
    let figures = vec![
        Figure::new(
            scenario,
            "ceiling.L",
            "L: XADD+XREADGROUP+XACK+XDEL in one EVALSHA, 50 clients",
            "cycles/s",
            cycle,
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1",
            "RTT1: sequential SET, one redis-rs connection",
            "cmds/s",
            rtt1,
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1.client_cpu",
            "RTT1: client CPU per SET (all threads)",
            "µs",
            Summary::of(&rtt1_cpu),
        ),
        Figure::new(
            scenario,
            "ceiling.RTT1.command_time",
            "RTT1: Redis time inside each SET (commandstats)",
            "µs",
            Summary::of(&rtt1_usec),
        ),
        Figure::new(
            scenario,
            "ceiling.benchmark_c1",
            "redis-benchmark -c 1 SET (reference)",
            "cmds/s",
            reference,
        ),
    ];
    let details = json!({
        "L": "redis-benchmark -c 50 -n 200000 -q EVALSHA <sha> 1 <stream>; the script XADDs, \
              XREADGROUPs (creating the group when missing), XACKs and XDELs one message",
        "RTT1": "20000 sequential SET k v awaited one by one on one multiplexed redis-rs connection",
    });
    Ok((ceilings, Outcome { figures, details }))
}
