//! Counting the run log against the acknowledged keys, and waiting until every one
//! has run.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use docket::Docket;
use tokio::time::Instant;

use crate::bed::Bed;
use crate::faults::Faults;
use crate::losses::dead_letters;
use crate::{DRAIN_LIMIT, say};

/// What the run log says about the acknowledged keys.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Acknowledged keys that ran at least once.
    pub(crate) completed: usize,
    /// Runs beyond the first of an acknowledged key.
    pub(crate) duplicate_runs: usize,
    /// Runs of keys that were never acknowledged.
    pub(crate) unacknowledged_runs: usize,
    /// Acknowledged keys that never ran, sorted.
    pub(crate) missing: Vec<String>,
}

/// How many times each line appears in `path`; a last line without its newline (being
/// written) is left out.
pub(crate) fn count_lines(path: &str) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut counts = HashMap::new();
    for line in complete.lines().filter(|line| !line.is_empty()) {
        *counts.entry(line.to_owned()).or_insert(0) += 1;
    }
    counts
}

/// Compares the run log with the acknowledged keys.
fn tally(log: &str, acknowledged: &HashSet<String>) -> Tally {
    let counts = count_lines(log);
    let mut tally = Tally::default();
    for (key, runs) in &counts {
        if acknowledged.contains(key) {
            tally.completed += 1;
            tally.duplicate_runs += runs - 1;
        } else {
            tally.unacknowledged_runs += runs;
        }
    }
    tally.missing = acknowledged
        .iter()
        .filter(|key| !counts.contains_key(*key))
        .cloned()
        .collect();
    tally.missing.sort_by_key(|key| natural(key));
    tally
}

/// A sort key for `p{producer}-{index}`: by producer, then index.
fn natural(key: &str) -> (usize, usize, String) {
    let parsed = key
        .strip_prefix('p')
        .and_then(|rest| rest.split_once('-'))
        .and_then(|(p, i)| Some((p.parse().ok()?, i.parse().ok()?)));
    let (producer, index) = parsed.unwrap_or((usize::MAX, usize::MAX));
    (producer, index, key.to_owned())
}

/// Waits (at most [`DRAIN_LIMIT`]) until every acknowledged key is in the run log or
/// dead-lettered, replacing workers that exit meanwhile.
pub(crate) async fn await_runs(
    bed: &Bed,
    docket: &Docket,
    acknowledged: &HashSet<String>,
    faults: &mut Faults,
    started: Instant,
) -> Tally {
    let deadline = Instant::now() + DRAIN_LIMIT;
    let mut reported = usize::MAX;
    loop {
        let tally = tally(&bed.log, acknowledged);
        if tally.missing.is_empty() || Instant::now() >= deadline {
            return tally;
        }
        if let Ok(letters) = dead_letters(docket).await {
            let dead: HashSet<&str> = letters.iter().map(|letter| letter.key.as_str()).collect();
            if tally.missing.iter().all(|key| dead.contains(key.as_str())) {
                return tally;
            }
        }
        if tally.missing.len() != reported && tally.missing.len() <= 10 {
            say(started, &format!("waiting for {:?}", tally.missing));
            reported = tally.missing.len();
        }
        faults.watch_exits(bed, started);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
