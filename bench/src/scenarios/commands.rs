//! Scenario 5, Redis commands per task on the drain path.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{Value, json};

use super::context::{Bench, ttl_label};
use super::drain::{Drained, drain_once};
use super::{FIRE_AND_FORGET, TRACKED};
use crate::monitor::Counts;
use crate::report::{Figure, Outcome};
use crate::stats::{Summary, count, count64};

/// Per-task medians of per-command counts over runs.
fn per_task(maps: &[&BTreeMap<String, u64>], tasks: usize) -> BTreeMap<String, f64> {
    let mut names: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = maps
                .iter()
                .map(|m| count64(m.get(name).copied().unwrap_or(0)) / count(tasks))
                .collect();
            (name.clone(), Summary::of(&values).median)
        })
        .collect()
}

/// Scenario 5, Redis commands per task on the drain path, concurrency 50: client-sent commands
/// counted exactly under `MONITOR` (an `EVALSHA` is one), and server-side executions
/// from `INFO commandstats` (script calls included).
pub(crate) async fn commands(bench: &mut Bench) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut details = serde_json::Map::new();
    for ttl in [TRACKED, FIRE_AND_FORGET] {
        let mut runs = Vec::new();
        for _ in 0..bench.runs {
            runs.push(drain_once(bench, None, 50, ttl, true).await?);
        }
        let mode = ttl_label(ttl);
        let tasks = bench.n(20_000);
        let counts: Vec<&Counts> = runs.iter().filter_map(|r| r.monitor.as_ref()).collect();
        let client: Vec<f64> = counts
            .iter()
            .map(|c| count64(c.client_total()) / count(tasks))
            .collect();
        let script: Vec<f64> = counts
            .iter()
            .map(|c| count64(c.script_total()) / count(tasks))
            .collect();
        let server: Vec<f64> = runs.iter().map(Drained::server_commands_per_task).collect();
        outcome.figures.push(
            Figure::new(
                "5 commands",
                format!("commands.client.{mode}"),
                format!("client commands/task, {mode}, c=50 (MONITOR)"),
                "cmds/task",
                Summary::of(&client),
            )
            .at_most(8.0, "≤ 8"),
        );
        outcome.figures.push(Figure::new(
            "5 commands",
            format!("commands.server.{mode}"),
            format!("server-side executions/task, {mode}, c=50 (commandstats)"),
            "cmds/task",
            Summary::of(&server),
        ));
        details.insert(
            mode.to_owned(),
            json!({
                "client_per_task": Summary::of(&client),
                "script_internal_per_task": Summary::of(&script),
                "server_executions_per_task": Summary::of(&server),
                "client_per_command_per_task": per_task(&counts.iter().map(|c| &c.client).collect::<Vec<_>>(), tasks),
                "script_per_command_per_task": per_task(&counts.iter().map(|c| &c.script).collect::<Vec<_>>(), tasks),
                "commandstats_per_command_per_task": per_task(&runs.iter().map(|r| &r.commandstats).collect::<Vec<_>>(), tasks),
                "drain_rate_under_monitor": Summary::of(&runs.iter().map(Drained::rate).collect::<Vec<_>>()),
                "runs": runs.iter().map(Drained::to_json).collect::<Vec<_>>(),
            }),
        );
    }
    bench.clean().await?;
    details.insert(
        "method".into(),
        json!(
            "CONFIG RESETSTAT after adding the N tasks (producer dropped), then a worker \
             child drains them. On this Redis (7.x) INFO commandstats and \
             total_commands_processed both include commands called inside scripts (checked: \
             an EVAL calling SET, GET and INCR adds 4 to total_commands_processed), so the \
             client-sent count comes from a MONITOR connection that skips `[0 lua]` lines: \
             every EVALSHA counts 1, its inner calls 0. Includes the worker's connection \
             set-up, heartbeats and final checks; excludes the bench's own CONFIG RESETSTAT \
             and sentinel ECHO. MONITOR slows the server, which may enlarge batches; \
             drain_rate_under_monitor shows by how much."
        ),
    );
    outcome.details = Value::Object(details);
    Ok(outcome)
}
