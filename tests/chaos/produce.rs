//! The producers: each adds its share of keyed calls at its pace, every one until
//! acknowledged.

use std::time::Duration;

use docket::{Disposition, Docket};
use tokio::time::Instant;

use crate::bed::{Bed, connect};
use crate::options::Options;
use crate::rng::Rng;
use crate::{ADD_RETRY, ADD_TIMEOUT, FAIL_FIRST_PERCENT, PRODUCER_GRACE, Work, wide};

/// What a producer is to add, and when.
struct Plan {
    producer: usize,
    count: usize,
    started: Instant,
    /// The calls are spread evenly over this span from `started`.
    span: Duration,
    /// Past this the producer gives up on the calls it has not added.
    deadline: Instant,
    seed: u64,
    log: String,
}

/// How one producer's adds went.
#[derive(Debug, Default)]
pub(crate) struct Produced {
    /// The keys whose `add` was acknowledged.
    pub(crate) acknowledged: Vec<String>,
    /// Acknowledged calls planned to fail their first attempt.
    pub(crate) fail_first: usize,
    /// `add`s that failed or timed out and were tried again.
    pub(crate) add_errors: usize,
    /// Retried `add`s answered "already scheduled": an earlier try had got through.
    pub(crate) already_scheduled: usize,
    /// Calls never acknowledged (the producer gave up at its deadline).
    pub(crate) abandoned: usize,
    pub(crate) last_error: Option<String>,
}

/// One producer: adds `p{producer}-{i}` at its pace, each until acknowledged.
async fn produce(docket: Docket, plan: Plan) -> Produced {
    let mut rng = Rng::new(plan.seed ^ wide(plan.producer + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let each = plan
        .span
        .checked_div(u32::try_from(plan.count.max(1)).unwrap_or(u32::MAX))
        .unwrap_or_default();
    let mut produced = Produced::default();
    for index in 0..plan.count {
        let key = format!("p{}-{index}", plan.producer);
        let fail_first = rng.percent(FAIL_FIRST_PERCENT);
        let millis = 1 + rng.below(20);
        let due = plan.started + each.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
        tokio::time::sleep_until(due).await;
        let call = || Work::new(key.clone(), fail_first, millis, plan.log.clone());
        if add_until_acknowledged(&docket, &key, call, plan.deadline, &mut produced).await {
            produced.acknowledged.push(key);
            produced.fail_first += usize::from(fail_first);
        } else {
            produced.abandoned = plan.count - index;
            break;
        }
    }
    produced
}

/// Adds one call under `key`, trying again after every error or timeout until it is
/// acknowledged (true) or `deadline` passes (false).
async fn add_until_acknowledged(
    docket: &Docket,
    key: &str,
    call: impl Fn() -> Work,
    deadline: Instant,
    produced: &mut Produced,
) -> bool {
    let mut tried = false;
    loop {
        match tokio::time::timeout(ADD_TIMEOUT, docket.add(call()).key(key)).await {
            Ok(Ok(execution)) => match execution.disposition() {
                Disposition::Scheduled | Disposition::Superseded => return true,
                Disposition::AlreadyScheduled => {
                    produced.already_scheduled += usize::from(tried);
                    return true;
                }
                Disposition::Struck => {
                    produced.last_error = Some(format!("`{key}` was struck"));
                }
            },
            Ok(Err(error)) => produced.last_error = Some(error.to_string()),
            Err(_) => produced.last_error = Some(format!("`add` timed out after {ADD_TIMEOUT:?}")),
        }
        produced.add_errors += 1;
        tried = true;
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(ADD_RETRY).await;
    }
}

/// Starts every producer with its own docket handle and waits for them all.
pub(crate) async fn produce_all(
    bed: &Bed,
    options: &Options,
    started: Instant,
) -> Result<Vec<Produced>, String> {
    let span = options.duration * 2 / 3;
    let mut handles = Vec::new();
    for producer in 0..options.producers {
        let docket = connect(&bed.url).await?;
        let count = options.tasks / options.producers
            + usize::from(producer < options.tasks % options.producers);
        let plan = Plan {
            producer,
            count,
            started,
            span,
            deadline: started + span + PRODUCER_GRACE,
            seed: options.seed,
            log: bed.log.clone(),
        };
        handles.push(tokio::spawn(produce(docket, plan)));
    }
    let mut produced = Vec::new();
    for handle in handles {
        produced.push(
            handle
                .await
                .map_err(|error| format!("a producer failed: {error}"))?,
        );
    }
    Ok(produced)
}
