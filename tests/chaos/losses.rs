//! The calls a run lost, and what Redis and the worker logs hold about each.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use docket::Docket;

use crate::bed::Bed;
use crate::tally::Tally;
use crate::{DOCKET, LOST_LISTED};

/// The docket's dead letters. A handle's first command after a Redis restart fails
/// (its connection is re-opened behind it), so a few tries are allowed.
pub(crate) async fn dead_letters(docket: &Docket) -> Result<Vec<docket::DeadLetter>, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match tokio::time::timeout(Duration::from_secs(5), docket.dead_letters()).await
        {
            Ok(Ok(letters)) => return Ok(letters),
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        if tries >= 5 {
            return Err(format!("cannot list the dead letters: {error}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The acknowledged keys that never ran or were dead-lettered (never-ran first), a
/// description of the first of them, and every dead letter.
pub(crate) async fn losses(
    bed: &Bed,
    docket: &Docket,
    tally: &Tally,
    acknowledged: &HashSet<String>,
) -> Result<(Vec<String>, Vec<String>, Vec<docket::DeadLetter>), String> {
    let dead_letters = dead_letters(docket).await?;
    let mut lost: Vec<String> = tally.missing.clone();
    for letter in &dead_letters {
        if acknowledged.contains(&letter.key) && !lost.contains(&letter.key) {
            lost.push(letter.key.clone());
        }
    }
    let mut details = Vec::new();
    for key in lost.iter().take(LOST_LISTED) {
        details.push(describe(bed, key).await);
    }
    Ok((lost, details, dead_letters))
}

/// What Redis and the worker logs hold for a key that never ran, one line.
async fn describe(bed: &Bed, key: &str) -> String {
    let mut parts = Vec::new();
    let client = redis::Client::open(bed.url.as_str());
    let connection = match client {
        Ok(client) => client.get_multiplexed_async_connection().await.ok(),
        Err(_) => None,
    };
    if let Some(mut connection) = connection {
        let record: BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{DOCKET}:runs:{key}"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("record {record:?}"));
        let due: Option<String> = redis::cmd("ZSCORE")
            .arg(format!("{DOCKET}:queue"))
            .arg(key)
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("queue score {due:?}"));
        let parked: bool = redis::cmd("EXISTS")
            .arg(format!("{DOCKET}:{key}"))
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        parts.push(format!("parked copy {parked}"));
        parts.push(stream_entries(&mut connection, key).await);
    } else {
        parts.push("(cannot connect to Redis)".to_owned());
    }
    parts.push(log_mentions(&bed.dir.join("workers"), key));
    format!("{key}: {}", parts.join("; "))
}

/// The stream messages carrying `key`, with their pending entries (owner, idle time,
/// deliveries).
async fn stream_entries(connection: &mut redis::aio::MultiplexedConnection, key: &str) -> String {
    let stream = format!("{DOCKET}:stream");
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .unwrap_or_default();
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("docket-workers")
        .arg("-")
        .arg("+")
        .arg(100_000)
        .query_async(connection)
        .await
        .unwrap_or_default();
    let mut found = Vec::new();
    for entry in entries.ids {
        if entry.get::<String>("key").as_deref() != Some(key) {
            continue;
        }
        let owner = pending.iter().find(|p| p.0 == entry.id).map_or_else(
            || "not pending".to_owned(),
            |(_, consumer, idle, deliveries)| {
                format!("pending for {consumer}, idle {idle} ms, delivered {deliveries}x")
            },
        );
        found.push(format!(
            "{} (generation {:?}, attempt {:?}): {owner}",
            entry.id,
            entry.get::<String>("generation"),
            entry.get::<String>("attempt")
        ));
    }
    format!("stream messages {found:?}")
}

/// The worker log lines that name `key` (as a whole word), by log file.
fn log_mentions(dir: &Path, key: &str) -> String {
    let mut mentions = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let name = file
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        for line in text.lines().filter(|line| names_key(line, key)) {
            mentions.push(format!("{name}: {}", line.trim()));
        }
    }
    mentions.truncate(12);
    format!("worker log lines {mentions:?}")
}

/// Whether `line` has `key` as a whole word (`p0-1` is not in `p0-12`).
fn names_key(line: &str, key: &str) -> bool {
    line.match_indices(key).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + key.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-');
        !part(before) && !part(after)
    })
}
