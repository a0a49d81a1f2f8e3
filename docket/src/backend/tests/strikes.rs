//! The strikes stream: appended, read back, followed, compacted.

use super::*;
use crate::backend::StrikeEntry;
use crate::model::{Operator, StrikeSet};

/// The instructions of some entries, each of which must have been readable.
fn instructions(entries: &[StrikeEntry]) -> Vec<Instruction> {
    entries
        .iter()
        .map(|(id, read)| read.clone().unwrap_or_else(|error| panic!("{id}: {error}")))
        .collect()
}

pub(super) async fn strikes_are_read_back_in_the_order_they_were_appended(store: Store) {
    let backend = store.open("strikes", TTL).await;
    let mut reader = backend.strike_reader().await.unwrap();
    assert!(reader.read(None, None, 10).await.unwrap().is_empty());

    let appended = [
        Instruction::Strike(Strike::task("charge")),
        Instruction::Strike(Strike::when("customer", Operator::Equal, "c1").for_task("charge")),
        Instruction::Restore(Strike::task("charge")),
    ];
    let mut ids = Vec::new();
    for instruction in &appended {
        ids.push(
            backend
                .append_strike(instruction.clone(), 100)
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");

    let read = reader.read(None, None, 10).await.unwrap();
    assert_eq!(read.iter().map(|(id, _)| *id).collect::<Vec<_>>(), ids);
    assert_eq!(instructions(&read), appended);
    let rest = reader.read(Some(ids[1]), None, 10).await.unwrap();
    assert_eq!(instructions(&rest), appended[2..]);
    let first = reader.read(None, None, 1).await.unwrap();
    assert_eq!(instructions(&first), appended[..1]);
    assert!(
        reader
            .read(Some(ids[2]), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn a_reader_waits_for_the_next_strike(store: Store) {
    let backend = store.open("follow", TTL).await;
    let mut reader = backend.strike_reader().await.unwrap();
    let instruction = Instruction::Strike(Strike::task("charge"));
    let (read, appended) =
        tokio::join!(reader.read(None, Some(Duration::from_secs(5)), 10), async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            backend.append_strike(instruction.clone(), 100).await
        });
    let read = read.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].0, appended.unwrap());
    assert_eq!(instructions(&read), [instruction]);

    let started = tokio::time::Instant::now();
    let after = read[0].0;
    let nothing = reader
        .read(Some(after), Some(Duration::from_millis(200)), 10)
        .await
        .unwrap();
    assert!(nothing.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// Past `compact_above` entries, once the strikes in effect would take under half of
/// them, the stream is rewritten as a reset and those strikes, in the order a follower
/// of the whole stream holds them; a follower reading on from an entry compacted away
/// ends with the same strikes.
pub(super) async fn a_long_strikes_stream_is_compacted_to_the_strikes_in_effect(store: Store) {
    let backend = store.open("compacted", TTL).await;
    let strike = |task: &str| Instruction::Strike(Strike::task(task));
    let restore = |task: &str| Instruction::Restore(Strike::task(task));
    let appended = [
        strike("a"),
        strike("b"),
        restore("a"),
        strike("a"),
        strike("x"),
        restore("x"),
        restore("never struck"),
    ];
    let mut whole = StrikeSet::default();
    let mut follower = StrikeSet::default();
    let mut read_up_to = None;
    let mut reader = backend.strike_reader().await.unwrap();
    for (at, instruction) in appended.iter().enumerate() {
        backend.append_strike(instruction.clone(), 4).await.unwrap();
        whole.apply(instruction.clone());
        if at < 4 {
            for (id, read) in reader.read(read_up_to, None, 10).await.unwrap() {
                follower.apply(read.unwrap());
                read_up_to = Some(id);
            }
        }
    }
    assert_eq!(whole.all(), [Strike::task("b"), Strike::task("a")]);

    let compacted = reader.read(None, None, 100).await.unwrap();
    assert_eq!(
        instructions(&compacted),
        [Instruction::Reset, strike("b"), strike("a")]
    );
    for (_, read) in reader.read(read_up_to, None, 100).await.unwrap() {
        follower.apply(read.unwrap());
    }
    assert_eq!(follower.all(), whole.all());
}
