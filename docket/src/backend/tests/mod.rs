//! The backend suite: every operation of [`Backend`], written once and run on both
//! backends, `memory::` on an in-process store and `redis::` on a `redis-server` each
//! test starts for itself.
//!
//! A test is an `async fn(Store)` that opens its own docket through the [`Store`] it is
//! given. What only Redis has (its keys, their expiries) is checked on Redis alone,
//! through [`Store::redis`]; what Redis is by nature (its scripts, its restarts, its raw
//! stream entries) is tested in `redis/tests/`.

mod admission;
mod leases;
mod observe;
mod runs;
mod scheduling;
mod strikes;
mod unserved;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::AsyncCommands;
use ::redis::aio::MultiplexedConnection;
use futures::StreamExt;

use super::memory::MemoryBackend;
use super::redis::RedisBackend;
use super::url::{BackendUrl, RedisUrl};
use super::{
    AdmissionRule, Backend, BackendConfig, ConnectionOptions, Consumer, Delivery, EntryId, Finish,
    FinishOutcome, NewTask, Outcome, Output, ProgressUpdate, Slot,
};
use crate::error::Result;
use crate::model::{Activity, Event, ExecutionState, Instruction, Listing, Message, Strike, When};
use docket_testkit::RedisServer as TestServer;

pub(in crate::backend) use super::redis::epoch_millis;

/// Generates, for each test `file::test`, the tests `memory::test` and `redis::test`.
macro_rules! on_both_backends {
    ($($file:ident::$test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$file::$test(super::Store::in_memory()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$file::$test(super::Store::on_redis()).await;
                }
            )*
        }
    };
}

on_both_backends! {
    runs::every_operation_answers,
    runs::a_run_ends_completed_with_its_result_and_everything_expiring,
    runs::a_result_in_a_result_store_is_only_noted_in_the_record,
    runs::a_failed_run_keeps_its_error,
    runs::replacing_a_running_task_fences_its_finish,
    runs::a_stale_run_cannot_end_a_newer_run_of_the_same_generation,
    runs::fire_and_forget_keeps_nothing_after_a_run,
    runs::a_retry_waits_with_its_last_error_and_ends_without_it,
    runs::a_next_run_counts_its_interval_from_this_run_s_start,
    scheduling::schedule_queues_due_calls_and_parks_later_ones,
    scheduling::add_leaves_a_live_key_alone,
    scheduling::replace_supersedes_parked_and_queued_copies,
    scheduling::promotion_moves_only_due_tasks,
    scheduling::cancel_removes_waiting_tasks_and_signals_running_ones,
    scheduling::live_lists_every_live_task_with_its_record,
    scheduling::live_lists_tasks_in_the_order_they_will_run,
    scheduling::a_fresh_key_is_written_as_any_new_key,
    scheduling::pages_list_live_tasks_in_order_cursor_to_cursor,
    scheduling::heartbeats_add_their_activity_to_the_history,
    scheduling::a_parked_call_is_queued_with_the_message_its_record_holds,
    leases::a_sweeper_takes_over_abandoned_messages_and_fences_the_old_worker,
    leases::renewal_keeps_a_message_from_the_sweeper,
    leases::a_run_that_keeps_losing_its_worker_is_dead_lettered,
    leases::a_dead_letter_is_listed_until_it_is_forgotten,
    leases::a_claim_dropped_while_waiting_does_not_hold_up_the_next,
    leases::a_named_lease_is_held_until_it_runs_out,
    observe::now_is_the_server_clock,
    observe::watchers_see_state_and_progress_events,
    observe::progress_is_kept_only_while_its_run_runs,
    observe::heartbeats_register_workers_and_stale_ones_are_pruned,
    observe::workers_are_listed_oldest_heartbeat_first_with_their_tasks_sorted,
    observe::a_worker_that_leaves_is_gone_at_once_and_hands_over_the_sweep,
    admission::a_concurrency_slot_refuses_a_second_holder_at_its_max,
    admission::a_cooldown_refuses_inside_its_window,
    admission::a_rate_limit_says_how_long_until_there_is_room,
    admission::a_renewed_slot_outlasts_its_first_lease,
    admission::waiters_for_a_slot_are_woken_oldest_first_as_holders_release_it,
    admission::a_superseded_run_still_releases_its_slot,
    admission::a_slot_reserved_for_a_woken_waiter_lapses_with_its_lease,
    strikes::strikes_are_read_back_in_the_order_they_were_appended,
    strikes::a_reader_waits_for_the_next_strike,
    strikes::a_long_strikes_stream_is_compacted_to_the_strikes_in_effect,
    unserved::a_handed_back_call_waits_until_a_worker_serving_its_task_beats,
    unserved::calls_no_worker_serves_are_abandoned_only_past_their_time,
    unserved::a_waiting_call_cancelled_or_replaced_no_longer_waits,
}

/// How long terminal records live in most tests.
pub(in crate::backend) const TTL: Duration = Duration::from_mins(1);

/// One test's store: an in-process one, or a `redis-server` of its own.
pub(in crate::backend) struct Store {
    server: Option<TestServer>,
    /// The in-process store's name, unique to this test.
    memory: String,
}

impl Store {
    fn in_memory() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            server: None,
            memory: format!("backend-suite-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// A store on a `redis-server` of its own, killed when the store is dropped.
    pub(in crate::backend) fn on_redis() -> Self {
        Self {
            server: Some(TestServer::start()),
            memory: String::new(),
        }
    }

    /// Opens the docket `name`, keeping terminal records for `ttl`.
    pub(in crate::backend) async fn open(&self, name: &str, ttl: Duration) -> Box<dyn Backend> {
        self.open_with(config(name, ttl)).await
    }

    /// Opens a docket with these settings.
    pub(in crate::backend) async fn open_with(&self, config: BackendConfig) -> Box<dyn Backend> {
        match &self.server {
            None => Box::new(MemoryBackend::open(&self.memory, &config)),
            Some(server) => Box::new(connect(&server.url(), config).await),
        }
    }

    /// A connection of its own to the Redis server, on Redis only.
    pub(in crate::backend) async fn redis(&self) -> Option<MultiplexedConnection> {
        match &self.server {
            None => None,
            Some(server) => Some(raw(&server.url()).await),
        }
    }
}

/// The settings of the docket `name`: terminal records kept for `ttl`, a run
/// dead-lettered after 10 deliveries.
pub(in crate::backend) fn config(name: &str, ttl: Duration) -> BackendConfig {
    BackendConfig {
        name: name.to_owned(),
        execution_ttl: ttl,
        max_deliveries: 10,
        connections: ConnectionOptions::default(),
        shown_url: "redis://test".to_owned(),
    }
}

/// A Redis URL, parsed.
pub(in crate::backend) fn redis_url(url: &str) -> RedisUrl {
    match BackendUrl::parse(url).unwrap() {
        BackendUrl::Redis(target) => *target,
        BackendUrl::Memory { .. } => unreachable!("{url} is a Redis URL"),
    }
}

/// Connects to the Redis server at `url`.
pub(in crate::backend) async fn connect(url: &str, config: BackendConfig) -> RedisBackend {
    RedisBackend::connect(&redis_url(url), config)
        .await
        .expect("connect")
}

/// A plain connection to the Redis server at `url`.
pub(in crate::backend) async fn raw(url: &str) -> MultiplexedConnection {
    ::redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A first call of `send_email` under `key`.
pub(in crate::backend) fn call(key: &str, due: When) -> NewTask {
    NewTask {
        message: Message::unplaced(
            key.to_owned(),
            "send_email".to_owned(),
            format!(r#"{{"to":"{key}@example.com"}}"#),
            1,
        ),
        due,
        replace: false,
        fresh: false,
    }
}

/// The call, replacing any live copy of its key.
pub(in crate::backend) fn replacing(key: &str, due: When) -> NewTask {
    NewTask {
        replace: true,
        ..call(key, due)
    }
}

/// The delivered run, ended COMPLETED with `result`.
pub(in crate::backend) fn completed(delivery: &Delivery, result: Option<&str>) -> Finish {
    Finish {
        delivery: delivery.id,
        key: delivery.message.key.clone(),
        generation: delivery.message.generation,
        outcome: Outcome::Completed {
            result: result.map(|text| Output::Value(text.to_owned())),
        },
        next: None,
        release: None,
    }
}

/// The state of a key's record.
pub(in crate::backend) async fn state_of(
    backend: &dyn Backend,
    key: &str,
) -> Option<ExecutionState> {
    backend
        .record(key)
        .await
        .unwrap()
        .map(|record| record.state)
}

/// Every key of the docket `name`.
pub(in crate::backend) async fn keys_of(
    connection: &mut MultiplexedConnection,
    name: &str,
) -> BTreeSet<String> {
    let keys: Vec<String> = connection.keys(format!("{name}:*")).await.unwrap();
    keys.into_iter().collect()
}

/// Claims the one message there is to claim.
pub(in crate::backend) async fn claim_one(consumer: &mut Box<dyn Consumer>) -> Delivery {
    let mut claimed = consumer.claim(10, Duration::from_secs(2)).await.unwrap();
    assert_eq!(claimed.deliveries.len(), 1, "{claimed:?}");
    claimed.deliveries.remove(0)
}

/// Whether `actual` is `expected` give or take `slack`.
pub(in crate::backend) fn within(actual: Duration, expected: Duration, slack: Duration) -> bool {
    actual + slack >= expected && actual <= expected + slack
}

/// The next event of a stream, waiting up to 5 s for it.
pub(in crate::backend) async fn next_event(
    events: &mut (impl futures::Stream<Item = Event> + Unpin),
) -> Event {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event")
        .expect("the stream goes on")
}

/// Runs every operation of the docket `orders` once, checking that each answers as it
/// should.
pub(in crate::backend) async fn exercise_everything(backend: &dyn Backend) -> Result<()> {
    let mut events = backend.subscribe("k").await?;
    let mut cancellations = backend.cancellations().await?;
    backend
        .schedule(&[
            call("k", When::Now),
            call("later", When::After(Duration::from_mins(1))),
            call("gone", When::Now),
        ])
        .await?;
    backend
        .heartbeat("w1", &["send_email"], TTL, Activity::default())
        .await?;
    assert_eq!(backend.workers(Some("send_email")).await?.len(), 1);
    let mut consumer = backend.consumer("w1").await?;
    let claimed = consumer.claim(1, Duration::from_secs(2)).await?;
    let delivery = &claimed.deliveries[0];
    backend
        .report_progress("k", ProgressUpdate::Increment(1))
        .await?;
    assert!(backend.progress("k").await?.is_some());
    assert_eq!(
        backend.renew("w1", vec![delivery.id]).await?,
        Vec::<EntryId>::new()
    );
    assert!(backend.reclaim("w2", TTL, 10).await?.is_empty());
    assert_eq!(backend.live().await?.running.len(), 1);
    assert_eq!(backend.live_counts().await?.queued, 1);
    assert_eq!(backend.promote_due(10).await?.moved, 0);
    assert!(backend.cancel("gone").await?);
    assert!(backend.cancel("k").await?);
    let signalled = tokio::time::timeout(Duration::from_secs(5), cancellations.next()).await;
    let signalled = signalled.ok().flatten().expect("a cancellation");
    assert_eq!(signalled.key, "k");
    assert_eq!(signalled.generation, Some(delivery.message.generation));
    assert_eq!(
        backend
            .finish("w1", vec![completed(delivery, Some("1"))])
            .await?,
        [FinishOutcome::Recorded]
    );
    assert_eq!(
        state_of(backend, "k").await,
        Some(ExecutionState::Cancelled)
    );
    assert_eq!(backend.result("k", 1).await?, None);
    assert_eq!(backend.clear().await?, 1);
    backend.now().await?;
    let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
    assert!(matches!(first, Ok(Some(Event::State { .. }))), "{first:?}");

    exercise_the_rest(backend, &mut consumer).await
}

/// The operations [`exercise_everything`] leaves to this: admission, leases, strikes,
/// dead letters, the worker registry, calls waiting for a worker.
async fn exercise_the_rest(backend: &dyn Backend, consumer: &mut Box<dyn Consumer>) -> Result<()> {
    let slot = Slot {
        scope: "exports".to_owned(),
        max: 1,
    };
    let take = AdmissionRule::Concurrency {
        slot: slot.clone(),
        key: "k".to_owned(),
        lease: TTL,
    };
    assert_eq!(backend.admit(take).await?, None);
    backend
        .renew_slots(vec![(slot, "k".to_owned())], TTL)
        .await?;
    assert_eq!(backend.wake_waiters(TTL).await?, 0);
    let cooldown = AdmissionRule::Cooldown {
        scope: "digest".to_owned(),
        window: TTL,
    };
    assert_eq!(backend.admit(cooldown).await?, None);
    let rate = AdmissionRule::RateLimit {
        scope: "api".to_owned(),
        member: "k:1".to_owned(),
        limit: 1,
        per: TTL,
    };
    assert_eq!(backend.admit(rate).await?, None);
    assert!(backend.try_lock("seed", "w1", TTL).await?);

    let appended = backend
        .append_strike(Instruction::Strike(Strike::task("send_email")), 100)
        .await?;
    let mut strikes = backend.strike_reader().await?;
    let read = strikes.read(None, None, 10).await?;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].0, appended);

    assert!(backend.dead_letters().await?.is_empty());
    assert!(!backend.forget_dead_letter("k").await?);
    backend.leave("w1", &["send_email"]).await?;
    assert!(backend.workers(None).await?.is_empty());

    // A call handed back by a worker that does not serve it, given up on, and served.
    backend.schedule(&[call("handed-back", When::Now)]).await?;
    let claimed = consumer.claim(1, Duration::from_secs(2)).await?;
    let handed_back = Finish {
        outcome: Outcome::Deferred,
        next: Some(crate::backend::Reschedule {
            due: When::Now,
            attempt: 1,
            args: None,
            traceparent: None,
            wait: Some(crate::backend::Wait::Server),
        }),
        ..completed(&claimed.deliveries[0], None)
    };
    backend.finish("w1", vec![handed_back]).await?;
    assert_eq!(backend.unserved().await?.len(), 1);
    let error = crate::model::TaskError::new(crate::model::TaskErrorKind::UnknownTask, "gone");
    let since = backend.now().await? + Duration::from_secs(1);
    assert_eq!(
        backend.abandon_unserved("send_email", since, error).await?,
        1
    );
    backend.schedule(&[call("served", When::Now)]).await?;
    backend
        .heartbeat("w1", &["send_email"], TTL, Activity::default())
        .await?;
    Ok(())
}
