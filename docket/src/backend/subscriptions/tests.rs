//! The routing table on its own: reference counts per key, batches, what a lost
//! connection and its resubscription tell the followers.

use futures::{FutureExt, StreamExt};

use super::*;
use crate::model::ExecutionState;

fn queued(generation: u64) -> Event {
    Event::State {
        state: ExecutionState::Queued,
        generation,
        worker: None,
        error: None,
    }
}

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// The server's answer to every change it was asked for.
fn confirm(subscriptions: &Subscriptions) -> Changes {
    let changes = subscriptions.changes(true);
    subscriptions.subscribed(&changes.subscribe);
    subscriptions.unsubscribed(&changes.unsubscribe);
    if let Some(on) = changes.cancellations {
        subscriptions.cancellations_subscribed(on);
    }
    changes
}

/// What a follower's stream holds now.
#[derive(Debug, PartialEq, Eq)]
enum Now<T> {
    Heard(T),
    Ended,
    Waiting,
}

fn next_now<T: Topic>(follower: &mut Follower<T>) -> Now<T> {
    match follower.next().now_or_never() {
        Some(Some(item)) => Now::Heard(item),
        Some(None) => Now::Ended,
        None => Now::Waiting,
    }
}

fn has_joined<T: Topic>(follower: &Follower<T>) -> Option<bool> {
    follower
        .joined()
        .now_or_never()
        .map(|joined| joined.is_ok())
}

#[test]
fn followers_of_one_key_share_one_subscription() {
    let subscriptions = Subscriptions::served();
    let first = subscriptions.follow("k");
    let second = subscriptions.follow("k");
    assert_eq!(has_joined(&first), None, "nothing is subscribed yet");
    assert_eq!(confirm(&subscriptions).subscribe, keys(&["k"]));
    assert_eq!(has_joined(&first), Some(true));
    assert_eq!(has_joined(&second), Some(true));

    let third = subscriptions.follow("k");
    assert_eq!(
        has_joined(&third),
        Some(true),
        "the key is subscribed already"
    );
    assert!(subscriptions.changes(true).is_empty());

    drop(first);
    drop(third);
    assert!(
        subscriptions.changes(true).is_empty(),
        "one follower is left"
    );
    drop(second);
    assert_eq!(confirm(&subscriptions).unsubscribe, keys(&["k"]));
    assert!(subscriptions.is_idle());
    assert!(subscriptions.changes(true).is_empty());
}

#[test]
fn events_reach_the_followers_of_their_key_only() {
    let subscriptions = Subscriptions::served();
    let mut a1 = subscriptions.follow("a");
    let mut a2 = subscriptions.follow("a");
    let mut b = subscriptions.follow("b");
    confirm(&subscriptions);
    subscriptions.publish("a", || queued(1));
    subscriptions.publish("c", || unreachable!("nobody follows `c`"));
    assert_eq!(next_now(&mut a1), Now::Heard(queued(1)));
    assert_eq!(next_now(&mut a2), Now::Heard(queued(1)));
    assert_eq!(next_now(&mut a1), Now::Waiting);
    assert_eq!(next_now(&mut b), Now::Waiting);
}

#[test]
fn keys_followed_meanwhile_are_subscribed_in_one_batch() {
    let subscriptions = Subscriptions::served();
    let followers: Vec<_> = (0..5000)
        .map(|n| subscriptions.follow(&format!("k{n}")))
        .collect();
    let changes = confirm(&subscriptions);
    assert_eq!(changes.subscribe.len(), 5000);
    assert!(followers.iter().all(|f| has_joined(f) == Some(true)));
    drop(followers);
    assert_eq!(confirm(&subscriptions).unsubscribe.len(), 5000);
    assert!(subscriptions.is_idle());
}

#[test]
fn after_a_lost_connection_every_key_is_subscribed_again_then_its_followers_are_told() {
    let subscriptions = Subscriptions::served();
    let mut a = subscriptions.follow("a");
    let mut b = subscriptions.follow("b");
    let mut cancellations = subscriptions.follow_cancellations();
    confirm(&subscriptions);
    subscriptions.publish("a", || queued(1));

    subscriptions.disconnected(&|| Error::Closed);
    assert_eq!(
        next_now(&mut cancellations),
        Now::Ended,
        "cancellations are told at once: the records are their witness meanwhile"
    );
    assert_eq!(next_now(&mut a), Now::Heard(queued(1)), "heard before");
    assert_eq!(next_now(&mut a), Now::Waiting, "deaf, waiting");
    assert_eq!(next_now(&mut b), Now::Waiting);
    let joining = subscriptions.follow("a");
    assert_eq!(has_joined(&joining), None, "waits for the next connection");

    let mut again = subscriptions.changes(true);
    again.subscribe.sort();
    assert_eq!(again.subscribe, keys(&["a", "b"]));
    assert_eq!(
        again.cancellations, None,
        "its followers were told to follow again"
    );
    subscriptions.subscribed(&again.subscribe);
    assert_eq!(next_now(&mut a), Now::Ended, "told: read the record again");
    assert_eq!(next_now(&mut b), Now::Ended);
    assert_eq!(has_joined(&joining), Some(true));
    let rejoined = subscriptions.follow("a");
    assert_eq!(has_joined(&rejoined), Some(true), "subscribed already");
}

#[test]
fn a_follower_joining_when_the_connection_is_lost_gets_the_error() {
    let subscriptions = Subscriptions::served();
    let joining = subscriptions.follow("k");
    let cancellations = subscriptions.follow_cancellations();
    let _ = subscriptions.changes(true);
    subscriptions.disconnected(&|| Error::Closed);
    assert!(matches!(
        joining.joined().now_or_never(),
        Some(Err(Error::Closed))
    ));
    assert!(matches!(
        cancellations.joined().now_or_never(),
        Some(Err(Error::Closed))
    ));
}

#[test]
fn keys_left_wait_for_the_next_batch_of_unsubscribes_and_can_be_followed_meanwhile() {
    let subscriptions = Subscriptions::served();
    let followers: Vec<_> = ["a", "b"].map(|key| subscriptions.follow(key)).into();
    let _ = confirm(&subscriptions);
    drop(followers);
    assert!(subscriptions.changes(false).is_empty(), "they can wait");
    let back = subscriptions.follow("a");
    assert_eq!(has_joined(&back), Some(true), "still subscribed");
    assert_eq!(subscriptions.changes(true).unsubscribe, keys(&["b"]));
}

#[test]
fn a_key_left_while_it_is_subscribed_to_is_unsubscribed_once_confirmed() {
    let subscriptions = Subscriptions::served();
    let follower = subscriptions.follow("k");
    let changes = subscriptions.changes(true);
    drop(follower);
    assert!(subscriptions.changes(true).is_empty(), "under way");
    subscriptions.subscribed(&changes.subscribe);
    assert_eq!(confirm(&subscriptions).unsubscribe, keys(&["k"]));
    assert!(subscriptions.is_idle());
}

#[test]
fn a_key_followed_again_while_it_is_unsubscribed_from_is_subscribed_again() {
    let subscriptions = Subscriptions::served();
    let follower = subscriptions.follow("k");
    let _ = confirm(&subscriptions);
    drop(follower);
    let leaving = subscriptions.changes(true);
    assert_eq!(leaving.unsubscribe, keys(&["k"]));
    let back = subscriptions.follow("k");
    assert_eq!(has_joined(&back), None, "the unsubscribe is under way");
    subscriptions.unsubscribed(&leaving.unsubscribe);
    assert_eq!(confirm(&subscriptions).subscribe, keys(&["k"]));
    assert_eq!(has_joined(&back), Some(true));
}

#[test]
fn a_follower_that_stops_reading_is_told_instead_of_holding_everything() {
    let subscriptions = Subscriptions::local();
    let mut idle = subscriptions.follow("k");
    let mut reading = subscriptions.follow("k");
    for generation in 0..1000 {
        subscriptions.publish("k", || queued(generation));
        assert_eq!(next_now(&mut reading), Now::Heard(queued(generation)));
    }
    assert_eq!(
        next_now(&mut idle),
        Now::Ended,
        "it reads the record instead"
    );
}

#[test]
fn a_lost_registration_tells_every_follower_of_a_key() {
    let subscriptions = Subscriptions::served();
    let mut follower = subscriptions.follow("k");
    let mut cancellations = subscriptions.follow_cancellations();
    confirm(&subscriptions);
    subscriptions.lapsed();
    assert_eq!(next_now(&mut follower), Now::Ended);
    assert_eq!(
        next_now(&mut cancellations),
        Now::Waiting,
        "cancellations are always published"
    );
}

#[test]
fn a_refused_subscription_fails_its_joining_followers_and_is_not_retried_for_them() {
    let subscriptions = Subscriptions::served();
    let joining = subscriptions.follow("k");
    let changes = subscriptions.changes(true);
    subscriptions.refused(&changes.subscribe, &|| Error::Closed);
    assert!(matches!(
        joining.joined().now_or_never(),
        Some(Err(Error::Closed))
    ));
    assert!(subscriptions.changes(true).is_empty());
    drop(joining);
    assert!(subscriptions.is_idle());
}

#[test]
fn cancellations_are_subscribed_while_anyone_follows_them() {
    let subscriptions = Subscriptions::served();
    let mut first = subscriptions.follow_cancellations();
    let second = subscriptions.follow_cancellations();
    assert_eq!(confirm(&subscriptions).cancellations, Some(true));
    assert_eq!(has_joined(&first), Some(true));
    let cancelled = Cancelled {
        key: "k".to_owned(),
        generation: Some(2),
    };
    subscriptions.publish_cancellation(cancelled.clone());
    assert_eq!(next_now(&mut first), Now::Heard(cancelled));
    drop(first);
    assert!(subscriptions.changes(true).is_empty());
    drop(second);
    assert_eq!(confirm(&subscriptions).cancellations, Some(false));
    assert!(subscriptions.is_idle());
}

#[test]
fn without_a_server_a_follower_hears_at_once_and_a_left_key_is_forgotten() {
    let subscriptions = Subscriptions::local();
    let mut follower = subscriptions.follow("k");
    assert_eq!(has_joined(&follower), Some(true));
    assert!(subscriptions.is_followed("k"));
    subscriptions.publish("k", || queued(1));
    assert_eq!(next_now(&mut follower), Now::Heard(queued(1)));
    drop(follower);
    assert!(!subscriptions.is_followed("k"));
    assert!(subscriptions.changes(true).is_empty());
    assert!(subscriptions.is_idle());
}

#[test]
fn one_task_serves_the_table_until_nothing_is_followed() {
    let subscriptions = Subscriptions::served();
    let follower = subscriptions.follow("k");
    let server = subscriptions.claim_serving().expect("nobody serves it yet");
    assert_eq!(subscriptions.claim_serving(), None);
    assert!(!subscriptions.stop_serving_if_idle(server));
    drop(follower);
    let _ = confirm(&subscriptions);
    assert!(subscriptions.stop_serving_if_idle(server));
    let next = subscriptions.claim_serving().expect("handed back");
    assert_ne!(next, server);
}

#[test]
fn followers_of_a_task_that_ended_are_told() {
    let subscriptions = Subscriptions::served();
    let mut listening = subscriptions.follow("a");
    let server = subscriptions.claim_serving().unwrap();
    confirm(&subscriptions);
    let joining = subscriptions.follow("b");
    subscriptions.server_gone(server);
    assert_eq!(next_now(&mut listening), Now::Ended);
    assert!(matches!(
        joining.joined().now_or_never(),
        Some(Err(Error::Closed))
    ));
    assert!(
        subscriptions.claim_serving().is_some(),
        "the next one serves"
    );
}
