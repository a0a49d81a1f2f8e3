//! Adding calls: keys checked or generated, debounce applied, strikes checked, the batch
//! written in one backend call, and the metrics of what it did counted once.

use std::time::SystemTime;

use tracing::Instrument;

use super::Docket;
use crate::backend::{NewTask, ScheduleOutcome};
use crate::behaviors::admission::debounce;
use crate::error::{Error, Result};
use crate::execution::Execution;
use crate::model::{Disposition, Message};
use crate::observe::{metrics, trace};
use crate::task::Call;

/// How long a producer that just connected waits for the strikes before checking a
/// call against what it has (a worker waits for them without limit).
pub(super) const STRIKES_LOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The counter of calls stricken before they were written.
const STRICKEN: &str = "docket_tasks_stricken";

/// Key names docket uses for itself under the docket's prefix; a task key may not be one
/// of them or start with one of them followed by `:` (it would collide in Redis).
const RESERVED_KEYS: &[&str] = &[
    "stream",
    "queue",
    "strikes",
    "workers",
    "runs",
    "progress",
    "results",
    "task-workers",
    "worker-tasks",
    "state",
    "cancel",
    "lock",
    "concurrency",
    "waiting",
    "waiting-scopes",
    "cooldown",
    "rate",
    "debounce",
    "dead-letters",
    "memory-check",
    "listeners",
    "unserved",
    "activity",
];

/// The metrics of one batch of calls, counted per task and kind and recorded once: an
/// `add_many` of thousands of calls of one task takes the metrics lock a few times, not
/// a few times per call.
#[derive(Default)]
struct ScheduleCounts {
    /// (metric, task, count).
    counts: Vec<(&'static str, String, u64)>,
}

impl ScheduleCounts {
    fn add(&mut self, metric: &'static str, task: &str) {
        match self
            .counts
            .iter_mut()
            .find(|(m, t, _)| *m == metric && t == task)
        {
            Some((_, _, n)) => *n += 1,
            None => self.counts.push((metric, task.to_owned(), 1)),
        }
    }

    fn note(&mut self, task: &NewTask, disposition: Disposition) {
        let function = &task.message.function;
        match disposition {
            Disposition::Scheduled | Disposition::Superseded => {
                let written = if task.replace {
                    "docket_tasks_replaced"
                } else {
                    "docket_tasks_added"
                };
                self.add(written, function);
                self.add("docket_tasks_scheduled", function);
                if disposition == Disposition::Superseded {
                    self.add("docket_tasks_superseded", function);
                }
            }
            Disposition::Struck => self.add(STRICKEN, function),
            Disposition::AlreadyScheduled => {}
        }
    }

    fn record(self, docket: &str) {
        for (metric, task, n) in self.counts {
            let mut labels = metrics::labels(docket, None, Some(&task));
            // Calls docket struck, as opposed to those a worker's strike refused.
            if metric == STRICKEN {
                labels.push(("where", "docket".to_owned()));
            }
            metrics::count(metric, labels, n);
        }
    }
}

/// The calls to write: all of them, unless some were struck (then a copy of the rest,
/// which is rare).
fn unstruck<'a>(tasks: &'a [NewTask], struck: &[bool]) -> std::borrow::Cow<'a, [NewTask]> {
    if !struck.contains(&true) {
        return tasks.into();
    }
    tasks
        .iter()
        .zip(struck)
        .filter(|(_, struck)| !**struck)
        .map(|(task, _)| task.clone())
        .collect::<Vec<_>>()
        .into()
}

/// The digits of a generated key, in ASCII order (keys sort as their UUIDs do), all
/// unreserved in URLs; none is `-`, so a key never reads as a command-line flag.
const KEY_DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/// A key for a call given none: a UUID v7 (unique, and ordered by when it was made)
/// written as 22 URL-safe characters instead of 36. Every key is stored several times
/// per task (the record's name, the queue, the stream), so its length is memory.
fn generated_key() -> String {
    encode_key(uuid::Uuid::now_v7().as_u128())
}

/// 128 bits as 22 base-64 digits, most significant first (the first digit carries the
/// top 2 bits).
fn encode_key(mut bits: u128) -> String {
    let mut digits = [0u8; 22];
    for digit in digits.iter_mut().rev() {
        // The low 6 bits: always under 64.
        *digit = KEY_DIGITS[usize::try_from(bits & 63).unwrap_or(0)];
        bits >>= 6;
    }
    digits.iter().map(|&d| char::from(d)).collect()
}

fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("a key cannot be empty".into()));
    }
    for reserved in RESERVED_KEYS {
        if key == *reserved
            || key
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with(':'))
        {
            return Err(invalid(format!(
                "`{reserved}` is reserved for docket's own keys"
            )));
        }
    }
    Ok(())
}

impl Docket {
    /// Adds (or with `replace`, replaces) a batch of calls, within a producer span.
    pub(crate) async fn schedule(&self, calls: Vec<Call>, replace: bool) -> Result<Vec<Execution>> {
        let operation = if replace {
            "docket.replace"
        } else {
            "docket.add"
        };
        let span = tracing::info_span!(
            "docket.add",
            otel.name = operation,
            otel.kind = "producer",
            docket.name = %self.name(),
            docket.task = calls.first().map(Call::function).unwrap_or_default(),
            docket.calls = calls.len(),
        );
        self.schedule_calls(calls, replace).instrument(span).await
    }

    async fn schedule_calls(&self, calls: Vec<Call>, replace: bool) -> Result<Vec<Execution>> {
        let traceparent = trace::current_traceparent();
        if !self.inner.strikes.is_loaded()
            && !self.inner.strikes.wait_loaded(STRIKES_LOAD_WAIT).await
        {
            tracing::warn!(docket = %self.name(), "strikes not loaded yet; checking calls against those seen so far");
        }
        let mut tasks = Vec::with_capacity(calls.len());
        for call in calls {
            let args = call.args_json()?.to_owned();
            if args.len() > self.inner.max_payload_size {
                return Err(Error::PayloadTooLarge {
                    function: call.function.to_owned(),
                    size: args.len(),
                    limit: self.inner.max_payload_size,
                });
            }
            if let Some(key) = &call.key {
                validate_key(key)?;
            }
            let (key, due, replace, fresh) = match (call.debounce, call.key) {
                (Some(settle), key) => {
                    let (key, due) = debounce::schedule(call.function, key, settle);
                    (key, due, true, false)
                }
                (None, Some(key)) => (key, call.due, replace, false),
                (None, None) => (generated_key(), call.due, replace, true),
            };
            let mut message = Message::unplaced(key, call.function.to_owned(), args, 1);
            message.traceparent.clone_from(&traceparent);
            tasks.push(NewTask {
                message,
                due,
                replace,
                fresh,
            });
        }
        // Stricken calls are answered STRUCK here and never written.
        let struck: Vec<bool> = tasks
            .iter()
            .map(|task| {
                let message = &task.message;
                self.inner
                    .strikes
                    .blocking(&message.function, &message.args)
                    .inspect(|strike| {
                        tracing::info!(
                            docket = %self.name(), key = %message.key, task = %message.function,
                            strike = %strike, "call struck"
                        );
                    })
                    .is_some()
            })
            .collect();
        let to_write = unstruck(&tasks, &struck);
        let written = to_write.len();
        let mut outcomes = if to_write.is_empty() {
            Vec::new()
        } else {
            self.backend().schedule(&to_write).await?
        };
        if outcomes.len() != written {
            return Err(Error::Protocol(format!(
                "scheduled {written} calls but the backend answered for {}",
                outcomes.len()
            )));
        }
        outcomes.reverse();
        let mut counts = ScheduleCounts::default();
        let executions = tasks
            .into_iter()
            .zip(struck)
            .map(|(task, struck)| {
                let outcome = if struck {
                    ScheduleOutcome {
                        disposition: Disposition::Struck,
                        generation: 0,
                        when: SystemTime::now(),
                    }
                } else {
                    outcomes.pop().expect("one outcome per written call")
                };
                counts.note(&task, outcome.disposition);
                self.placed(task, &outcome)
            })
            .collect();
        counts.record(self.name());
        Ok(executions)
    }

    /// The execution of a call the backend scheduled (or refused) as `outcome` says.
    pub(super) fn placed(&self, task: NewTask, outcome: &ScheduleOutcome) -> Execution {
        let mut message = task.message;
        tracing::debug!(
            docket = %self.name(),
            key = %message.key,
            task = %message.function,
            disposition = %outcome.disposition,
            generation = outcome.generation,
            "scheduled"
        );
        message.when = outcome.when;
        message.generation = outcome.generation;
        Execution::new(self.core().clone(), message, outcome.disposition, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_refused_with_the_key_named() {
        for key in ["stream", "runs:abc", "queue", "progress:x"] {
            let error = validate_key(key).unwrap_err().to_string();
            assert!(error.contains(&format!("`{key}`")), "{error}");
        }
        for key in [
            "streamline",
            "order:42",
            "runs-7",
            "{weird}\n\"key\"",
            "ключ",
        ] {
            validate_key(key).unwrap();
            assert!(!key.starts_with('-'), "{key}");
        }
        assert!(validate_key("").is_err());
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_key_panics_and_every_refusal_names_it(
            key in prop_oneof![".*", "(stream|runs|queue|progress|results|cancel|state)(:.{0,6})?"]
        ) {
            if let Err(error) = validate_key(&key) {
                let text = error.to_string();
                prop_assert!(text.contains(&format!("`{key}`")), "{text}");
            }
        }
    }
}

#[cfg(test)]
mod generated {
    use super::*;

    #[test]
    fn generated_keys_are_short_url_safe_and_sort_as_they_were_made() {
        assert_eq!(encode_key(0), "0".repeat(22));
        // The first digit carries the top 2 bits: at most the fourth digit, `3`.
        assert_eq!(encode_key(u128::MAX), format!("3{}", "~".repeat(21)));
        let keys: Vec<String> = (0..1000).map(|_| generated_key()).collect();
        for key in &keys {
            assert_eq!(key.len(), 22, "{key}");
            assert!(key.bytes().all(|b| KEY_DIGITS.contains(&b)), "{key}");
            validate_key(key).unwrap();
        }
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "made in order, sorted in order");
        let unique: std::collections::HashSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len());
        assert!(encode_key(1 << 70) > encode_key((1 << 70) - 1));
    }
}
