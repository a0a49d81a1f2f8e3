//! Scenario 15, admission at scale: the admission rules (docs/production.md, "Admission
//! control") on a worker child at concurrency 50, with state tracking.
//!
//! - `concurrency(max = 1, arg = customer)` over 1,000 customers: 20,000 calls, 20 per
//!   customer in a shuffled order, drained next to the unconstrained drain of 20,000
//!   no-ops in the same run;
//! - one hot customer with 10,000 calls queued ahead of 999 customers with 10 each: how
//!   long the others wait (add → start, from the start time their task returns), next
//!   to the same 9,990 calls with no hot customer ahead, and the hot customer's drain;
//! - `rate_limit(1000, per = "1s")` over 5,000 calls, and `debounce = "100ms"` under
//!   10,000 calls to one key: figures without targets.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use docket::{Docket, Execution, Task};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::context::Bench;
use super::drain::{Drained, drain_once, drain_queued};
use super::{TRACKED, count_u64};
use crate::child::limited::{CustomerNoop, CustomerStamp, Debounced, RateStamp};
use crate::child::{ChildReport, Mode, unix_micros};
use crate::report::{Figure, Outcome};
use crate::stats::{Summary, count, count64, percentile};

/// The scenario's name in the table.
const SCENARIO: &str = "15 admission";
/// The worker child's concurrency, as in the drain scenario.
const CONCURRENCY: usize = 50;
/// Calls per `add_many`.
const BATCH: usize = 500;
/// Results read at once after a run.
const READ_BATCH: usize = 1000;
/// Calls of each customer beside the hot one.
const PER_OTHER: usize = 10;
/// How long a run may take before the bench gives up on it.
const RUN_TIMEOUT: Duration = Duration::from_mins(5);

/// Scenario 15: concurrency per customer at scale, a hot customer, a rate limit and a
/// debounce.
pub(crate) async fn admission(bench: &mut Bench) -> Result<Outcome> {
    let mut drains = Vec::new();
    let mut hot = Vec::new();
    let mut rated = Vec::new();
    let mut debounced = Vec::new();
    for _ in 0..bench.runs {
        let free = drain_once(bench, None, CONCURRENCY, TRACKED, false).await?;
        let limited = limited_drain(bench).await?;
        drains.push((free, limited));
        let alone = hot_run(bench, false).await?;
        hot.push((hot_run(bench, true).await?, alone));
        rated.push(rate_run(bench).await?);
        debounced.push(debounce_run(bench).await?);
    }
    bench.clean().await?;
    let mut figures = drain_figures(bench, &drains);
    let free_rates: Vec<f64> = drains.iter().map(|(free, _)| free.rate()).collect();
    figures.extend(hot_figures(bench, &hot, &free_rates));
    figures.extend(rate_figures(&rated));
    figures.extend(debounce_figures(&debounced));
    let details = json!({
        "worker": format!(
            "a child process (`docket-bench-worker`), concurrency {CONCURRENCY}, state tracking; \
             `drain` mode (run_until_finished) for the drains and the rate limit, `serve` \
             mode while the hot customer's and the debounced calls are added"
        ),
        "concurrency": {
            "tasks": bench.n(20_000),
            "customers": bench.n(1000),
            "order": "20 calls per customer, shuffled (a fixed seed), added with add_many ×500 \
                      before the worker starts",
            "rate": "N / (start of run_until_finished → its return), timed in the child",
            "runs": drains.iter().map(|(free, limited)| json!({
                "unconstrained": free.to_json(),
                "constrained": limited.to_json(),
            })).collect::<Vec<_>>(),
        },
        "hot_customer": {
            "hot_tasks": bench.n(10_000),
            "other_customers": bench.n(1000) - 1,
            "per_other": PER_OTHER,
            "order": "the hot customer's calls first, then the others' ten rounds of one call \
                      each; add_many ×500 while the worker serves",
            "latency": "the start time the task returns (SystemTime in the task) minus \
                        SystemTime just before the add_many that carried the call",
            "runs": hot.iter().map(|(with, alone)| json!({
                "with_hot": with.to_json(),
                "without_hot": alone.to_json(),
            })).collect::<Vec<_>>(),
        },
        "rate_limit": {
            "limit_per_second": rate_limit().0,
            "runs": rated.iter().map(Rated::to_json).collect::<Vec<_>>(),
        },
        "debounce": {
            "settle_ms": settle().as_secs_f64() * 1e3,
            "runs": debounced.iter().map(DebounceRun::to_json).collect::<Vec<_>>(),
        },
    });
    Ok(Outcome { figures, details })
}

/// `to − from` in milliseconds, from microsecond timestamps (negative if `to` is earlier).
fn millis_between(from: u64, to: u64) -> f64 {
    if to >= from {
        count64(to - from) / 1e3
    } else {
        -(count64(from - to) / 1e3)
    }
}

/// The rate limit `bench_rate_stamp` declares: runs per window, and the window.
fn rate_limit() -> (usize, Duration) {
    RateStamp::OPTIONS
        .rate_limit
        .map_or((0, Duration::ZERO), |limit| {
            (
                usize::try_from(limit.limit).unwrap_or(usize::MAX),
                limit.per,
            )
        })
}

/// The settle time `bench_debounced` declares.
fn settle() -> Duration {
    Debounced::OPTIONS.debounce.unwrap_or_default()
}

/// Adds `calls` in batches of [`BATCH`]; returns each call's execution with the time
/// (µs since the epoch) just before its batch was added.
async fn add_timed(producer: &Docket, calls: Vec<docket::Call>) -> Result<Vec<(u64, Execution)>> {
    let mut added = Vec::with_capacity(calls.len());
    let mut calls = calls.into_iter().peekable();
    while calls.peek().is_some() {
        let batch: Vec<docket::Call> = calls.by_ref().take(BATCH).collect();
        let called = unix_micros(SystemTime::now());
        let executions = producer.add_many(batch).await?;
        added.extend(executions.into_iter().map(|execution| (called, execution)));
    }
    Ok(added)
}

/// Waits until nothing is queued, scheduled or running on the docket.
async fn settled(producer: &Docket) -> Result<()> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    while producer.counts().await?.total() > 0 {
        if Instant::now() > deadline {
            bail!("the docket still had tasks after {RUN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The results of finished executions (start times the tasks returned), in order,
/// [`READ_BATCH`] read at once.
async fn results(executions: Vec<Execution>) -> Result<Vec<u64>> {
    let mut out = vec![0; executions.len()];
    let mut executions = executions.into_iter().enumerate().peekable();
    while executions.peek().is_some() {
        let mut reads = JoinSet::new();
        for (index, execution) in executions.by_ref().take(READ_BATCH) {
            reads.spawn(async move {
                let started = execution
                    .typed::<u64>()
                    .result_timeout(Duration::from_secs(30))
                    .await;
                (index, started)
            });
        }
        while let Some(read) = reads.join_next().await {
            let (index, started) = read?;
            out[index] = started.context("reading a start time")?;
        }
    }
    Ok(out)
}

/// A fixed shuffle (xorshift64*), so that every run drains calls in the same order.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let random = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(random % bound).unwrap_or(0);
        items.swap(i, j);
    }
}

/// A customer number as the tasks take it.
fn customer(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The constrained drain: N calls of `bench_customer_noop`, 20 per customer in a
/// shuffled order, added before a worker child drains them.
async fn limited_drain(bench: &mut Bench) -> Result<Drained> {
    bench.clean().await?;
    let tasks = bench.n(20_000);
    let customers = bench.n(1000);
    let name = bench.fresh_name("admission");
    let producer = bench.producer(&name, TRACKED).await?;
    let mut order: Vec<u32> = (0..tasks).map(|i| customer(i % customers)).collect();
    shuffle(&mut order);
    for batch in order.chunks(BATCH) {
        producer
            .add_many(batch.iter().map(|&c| CustomerNoop::new(c)))
            .await?;
    }
    drop(producer);
    let exe = bench.exe.clone();
    drain_queued(bench, &exe, &name, tasks, (CONCURRENCY, TRACKED), None).await
}

/// Figures of the concurrency-limited drain against the unconstrained one.
fn drain_figures(bench: &Bench, runs: &[(Drained, Drained)]) -> Vec<Figure> {
    let (tasks, customers) = (bench.n(20_000), bench.n(1000));
    let of = |figure: &dyn Fn(&Drained, &Drained) -> f64| {
        Summary::of(
            &runs
                .iter()
                .map(|(free, limited)| figure(free, limited))
                .collect::<Vec<_>>(),
        )
    };
    vec![
        Figure::new(
            SCENARIO,
            "admission.concurrency.drain",
            format!(
                "concurrency(max = 1, arg = customer), {customers} customers, N={tasks}, c=50: drain"
            ),
            "tasks/s",
            of(&|_, limited| limited.rate()),
        ),
        Figure::new(
            SCENARIO,
            "admission.concurrency.unconstrained",
            format!("unconstrained drain of N={tasks} no-ops, c=50 (same run)"),
            "tasks/s",
            of(&|free, _| free.rate()),
        ),
        Figure::new(
            SCENARIO,
            "admission.concurrency.ratio",
            "concurrency per customer: drain ÷ unconstrained drain",
            "×",
            of(&|free, limited| limited.rate() / free.rate()),
        )
        .at_least(0.5, "≥ 0.5"),
        Figure::new(
            SCENARIO,
            "admission.concurrency.worker_cpu",
            "concurrency per customer: worker CPU per task",
            "µs",
            of(&|_, limited| limited.worker_cpu_us()),
        ),
        Figure::new(
            SCENARIO,
            "admission.unconstrained.worker_cpu",
            "unconstrained: worker CPU per task",
            "µs",
            of(&|free, _| free.worker_cpu_us()),
        ),
        Figure::new(
            SCENARIO,
            "admission.concurrency.server_commands",
            "concurrency per customer: server-side executions per task (commandstats)",
            "cmds/task",
            of(&|_, limited| limited.server_commands_per_task()),
        ),
        Figure::new(
            SCENARIO,
            "admission.unconstrained.server_commands",
            "unconstrained: server-side executions per task (commandstats)",
            "cmds/task",
            of(&|free, _| free.server_commands_per_task()),
        ),
    ]
}

/// One run of the hot-customer scenario.
struct HotRun {
    /// Whether the hot customer's calls were queued ahead.
    with_hot: bool,
    /// Add → start of every other customer's call, in ms.
    others_ms: Vec<f64>,
    /// The hot customer's calls.
    hot_tasks: usize,
    /// From the first add to the hot customer's last start, in ms.
    hot_drain_ms: f64,
    /// From the first add to the first start of another customer's call, in ms.
    first_other_ms: f64,
    child: ChildReport,
}

impl HotRun {
    fn to_json(&self) -> Value {
        json!({
            "with_hot": self.with_hot,
            "others": self.others_ms.len(),
            "others_p50_ms": percentile(&self.others_ms, 50),
            "others_p99_ms": percentile(&self.others_ms, 99),
            "others_max_ms": percentile(&self.others_ms, 100),
            "first_other_start_ms": self.first_other_ms,
            "hot_tasks": self.hot_tasks,
            "hot_drain_ms": self.hot_drain_ms,
            "worker_cpu_us_per_task": self.child.cpu_ms * 1e3
                / count(self.hot_tasks + self.others_ms.len()),
            "child": self.child,
        })
    }
}

/// The hot customer (customer 0) with its calls queued first, then 999 customers' ten
/// calls each, added while a worker child serves; or the others alone.
async fn hot_run(bench: &mut Bench, with_hot: bool) -> Result<HotRun> {
    bench.clean().await?;
    let hot_tasks = if with_hot { bench.n(10_000) } else { 0 };
    let others = bench.n(1000) - 1;
    let name = bench.fresh_name(if with_hot { "hot" } else { "not-hot" });
    let worker = bench
        .spawn_worker(Mode::Serve, &name, CONCURRENCY, TRACKED)
        .await?;
    let producer = bench.producer(&name, TRACKED).await?;
    let mut calls: Vec<docket::Call> = (0..hot_tasks)
        .map(|_| CustomerStamp::new(0).into())
        .collect();
    for _ in 0..PER_OTHER {
        calls.extend((1..=others).map(|c| docket::Call::from(CustomerStamp::new(customer(c)))));
    }
    let added = add_timed(&producer, calls).await?;
    settled(&producer).await?;
    let (child, _) = worker.finish().await?;
    let first_add = added.first().map_or(0, |(called, _)| *called);
    let (called, executions): (Vec<u64>, Vec<Execution>) = added.into_iter().unzip();
    let started = results(executions).await?;
    drop(producer);
    let hot_last = started[..hot_tasks]
        .iter()
        .copied()
        .max()
        .unwrap_or(first_add);
    let others_ms: Vec<f64> = called[hot_tasks..]
        .iter()
        .zip(&started[hot_tasks..])
        .map(|(&called, &started)| millis_between(called, started))
        .collect();
    let first_other = started[hot_tasks..]
        .iter()
        .copied()
        .min()
        .unwrap_or(first_add);
    Ok(HotRun {
        with_hot,
        others_ms,
        hot_tasks,
        hot_drain_ms: millis_between(first_add, hot_last),
        first_other_ms: millis_between(first_add, first_other),
        child,
    })
}

/// Figures of the hot customer's runs (with the hot customer, and the others alone), and
/// beside them the time the unconstrained drains of the same runs (`free_rates`, tasks/s)
/// take over as many no-ops as the other customers' calls.
fn hot_figures(bench: &Bench, runs: &[(HotRun, HotRun)], free_rates: &[f64]) -> Vec<Figure> {
    let hot_tasks = bench.n(10_000);
    let others = bench.n(1000) - 1;
    let with = |figure: fn(&HotRun) -> f64| {
        Summary::of(
            &runs
                .iter()
                .map(|(with, _)| figure(with))
                .collect::<Vec<_>>(),
        )
    };
    let alone = |figure: fn(&HotRun) -> f64| {
        Summary::of(
            &runs
                .iter()
                .map(|(_, alone)| figure(alone))
                .collect::<Vec<_>>(),
        )
    };
    let others_calls = others * PER_OTHER;
    vec![
        Figure::new(
            SCENARIO,
            "admission.hot.others_p99",
            format!(
                "hot customer ({hot_tasks} queued first) beside {others} customers ×{PER_OTHER}: their add → start p99"
            ),
            "ms",
            with(|run| percentile(&run.others_ms, 99)),
        )
        .at_most(50.0, "≤ 50 ms"),
        Figure::new(
            SCENARIO,
            "admission.hot.others_p50",
            "hot customer first: the other customers' add → start p50",
            "ms",
            with(|run| percentile(&run.others_ms, 50)),
        ),
        Figure::new(
            SCENARIO,
            "admission.hot.first_other",
            "hot customer first: first add → the first other customer's start",
            "ms",
            with(|run| run.first_other_ms),
        ),
        Figure::new(
            SCENARIO,
            "admission.alone.others_p99",
            format!("the same {others_calls} calls, no hot customer: add → start p99"),
            "ms",
            alone(|run| percentile(&run.others_ms, 99)),
        ),
        Figure::new(
            SCENARIO,
            "admission.hot.floor",
            format!(
                "{others_calls} no-ops at the unconstrained drain rate (same run): their drain time"
            ),
            "ms",
            Summary::of(
                &free_rates
                    .iter()
                    .map(|rate| count(others_calls) / rate * 1e3)
                    .collect::<Vec<_>>(),
            ),
        ),
        Figure::new(
            SCENARIO,
            "admission.hot.drain",
            format!("hot customer: {hot_tasks} calls one at a time, first add → last start"),
            "tasks/s",
            with(|run| count(run.hot_tasks) / (run.hot_drain_ms / 1e3).max(1e-9)),
        ),
    ]
}

/// One rate-limited drain.
struct Rated {
    tasks: usize,
    /// Start times, µs since the epoch, sorted.
    starts: Vec<u64>,
    child: ChildReport,
}

impl Rated {
    /// Runs per second after the first window: (N − limit) / (first → last start). A
    /// limiter that lets each run start as soon as the window has room reads the limit.
    fn sustained(&self) -> f64 {
        let (limit, per) = rate_limit();
        let (Some(&first), Some(&last)) = (self.starts.first(), self.starts.last()) else {
            return 0.0;
        };
        if self.tasks <= limit {
            return 0.0;
        }
        let span = millis_between(first, last) / 1e3;
        count(self.tasks - limit) / span.max(1e-9) * per.as_secs_f64()
    }

    /// The most runs that started within any one window.
    fn peak_in_window(&self) -> usize {
        let per = u64::try_from(rate_limit().1.as_micros()).unwrap_or(u64::MAX);
        let mut peak = 0;
        let mut from = 0;
        for (to, &at) in self.starts.iter().enumerate() {
            while at - self.starts[from] >= per {
                from += 1;
            }
            peak = peak.max(to + 1 - from);
        }
        peak
    }

    fn to_json(&self) -> Value {
        json!({
            "tasks": self.tasks,
            "sustained_per_window": self.sustained(),
            "peak_in_window": self.peak_in_window(),
            "first_to_last_start_ms": match (self.starts.first(), self.starts.last()) {
                (Some(&first), Some(&last)) => millis_between(first, last),
                _ => 0.0,
            },
            "child": self.child,
        })
    }
}

/// N calls of `bench_rate_stamp` added first, drained by a worker child; their start
/// times read back.
async fn rate_run(bench: &mut Bench) -> Result<Rated> {
    bench.clean().await?;
    let (limit, _) = rate_limit();
    // At least two windows' worth, so that the sustained rate means something.
    let tasks = bench.n(5_000).max(2 * limit);
    let name = bench.fresh_name("rate");
    let producer = bench.producer(&name, TRACKED).await?;
    let calls: Vec<docket::Call> = (0..tasks).map(|_| RateStamp::new().into()).collect();
    let added = add_timed(&producer, calls).await?;
    let worker = bench
        .spawn_worker(Mode::Drain, &name, CONCURRENCY, TRACKED)
        .await?;
    let (child, _) = worker.finish().await?;
    if child.starts != count_u64(tasks) {
        bail!("the worker started {} tasks of {tasks}", child.starts);
    }
    let mut starts = results(added.into_iter().map(|(_, e)| e).collect()).await?;
    starts.sort_unstable();
    Ok(Rated {
        tasks,
        starts,
        child,
    })
}

/// Figures of the rate-limited drains.
fn rate_figures(runs: &[Rated]) -> Vec<Figure> {
    let (limit, per) = rate_limit();
    let window = format!("{}", per.as_secs_f64());
    let tasks = runs.first().map_or(0, |run| run.tasks);
    let of = |figure: fn(&Rated) -> f64| Summary::of(&runs.iter().map(figure).collect::<Vec<_>>());
    vec![
        Figure::new(
            SCENARIO,
            "admission.rate.sustained",
            format!(
                "rate_limit({limit}, per = {window} s), N={tasks}: runs per window after the first"
            ),
            "runs/s",
            of(Rated::sustained),
        ),
        Figure::new(
            SCENARIO,
            "admission.rate.ratio",
            "rate limit: achieved ÷ the limit",
            "×",
            of(|run| run.sustained() / count(rate_limit().0)),
        ),
        Figure::new(
            SCENARIO,
            "admission.rate.peak",
            format!(
                "rate limit: most task starts in any {window} s (the window counts admissions)"
            ),
            "runs",
            of(|run| count(run.peak_in_window())),
        ),
    ]
}

/// One debounced burst.
struct DebounceRun {
    calls: usize,
    /// The calls' rate, added one after the other.
    calls_per_s: f64,
    /// Runs the burst became.
    runs: u64,
    /// From the last call's return to the start of the run it became, in ms.
    after_last_ms: f64,
}

impl DebounceRun {
    fn to_json(&self) -> Value {
        json!({
            "calls": self.calls,
            "calls_per_s": self.calls_per_s,
            "runs": self.runs,
            "after_last_call_ms": self.after_last_ms,
        })
    }
}

/// N calls of `bench_debounced` (one key) added one after the other while a worker child
/// serves; the runs they became and when the last one started.
async fn debounce_run(bench: &mut Bench) -> Result<DebounceRun> {
    bench.clean().await?;
    let calls = bench.n(10_000);
    let name = bench.fresh_name("debounce");
    let worker = bench
        .spawn_worker(Mode::Serve, &name, CONCURRENCY, TRACKED)
        .await?;
    let producer = bench.producer(&name, TRACKED).await?;
    let adding = Instant::now();
    let mut last = None;
    for call in 0..calls {
        last = Some(producer.add(Debounced::new(customer(call))).await?);
    }
    let returned = unix_micros(SystemTime::now());
    let calls_per_s = count(calls) / adding.elapsed().as_secs_f64().max(1e-9);
    let last = last.context("no call was added")?;
    let started = last
        .result_timeout(Duration::from_secs(30) + settle())
        .await?;
    settled(&producer).await?;
    drop(producer);
    let (child, _) = worker.finish().await?;
    Ok(DebounceRun {
        calls,
        calls_per_s,
        runs: child.starts,
        after_last_ms: millis_between(returned, started),
    })
}

/// Figures of the debounced bursts.
fn debounce_figures(runs: &[DebounceRun]) -> Vec<Figure> {
    let settle_ms = settle().as_secs_f64() * 1e3;
    let calls = runs.first().map_or(0, |run| run.calls);
    let of =
        |figure: fn(&DebounceRun) -> f64| Summary::of(&runs.iter().map(figure).collect::<Vec<_>>());
    vec![
        Figure::new(
            SCENARIO,
            "admission.debounce.runs",
            format!("debounce = {settle_ms:.0} ms, {calls} sequential calls to one key: runs"),
            "runs",
            of(|run| count64(run.runs)),
        ),
        Figure::new(
            SCENARIO,
            "admission.debounce.after_last",
            "debounce: last call's return → the run's start",
            "ms",
            of(|run| run.after_last_ms),
        ),
        Figure::new(
            SCENARIO,
            "admission.debounce.calls",
            "debounce: sequential calls (each replaces the waiting one)",
            "calls/s",
            of(|run| run.calls_per_s),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shuffle_is_a_fixed_permutation() {
        let mut a: Vec<usize> = (0..1000).collect();
        let mut b = a.clone();
        shuffle(&mut a);
        shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn peak_runs_in_a_window() {
        let starts: Vec<u64> = [0, 100, 999_999, 1_000_000, 1_500_000, 1_999_999]
            .into_iter()
            .collect();
        let rated = Rated {
            tasks: starts.len(),
            starts,
            child: ChildReport::default(),
        };
        // 0, 100 and 999 999 fall within one second; so do 1 000 000 .. 1 999 999.
        assert_eq!(rated.peak_in_window(), 3);
    }
}
