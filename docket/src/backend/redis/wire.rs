//! How docket's values are spelled in Redis: times, messages, records, progress.
//!
//! Times are RFC 3339 UTC with milliseconds (`2025-01-31T12:00:00.250Z`) in messages and
//! records alike; the scripts write them from the server clock, Rust only reads them.
//! Sorted-set scores (due times, heartbeats) are epoch milliseconds.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Value;

use crate::backend::Wait;
use crate::error::{Error, Result};
use crate::model::{
    DeadLetter, ExecutionRecord, ExecutionState, Message, ProgressState, TaskError, When,
};

/// Milliseconds since the Unix epoch, rounded up (0 before it, saturating far after).
pub(in crate::backend) fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, ceil_millis)
}

/// A duration in whole milliseconds, saturating.
pub(super) fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The instant `millis` after the Unix epoch.
pub(super) fn from_epoch_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// Reads an RFC 3339 timestamp.
pub(super) fn parse_time(text: &str) -> Option<SystemTime> {
    // Every message carries one: the scripts' own spelling is read directly, anything
    // else (another offset, more digits) by chrono.
    scripts_time(text).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .map(SystemTime::from)
    })
}

/// Reads a time exactly as the scripts write it (`2025-01-31T12:00:00.250Z`, from 1970
/// on); `None` for any other spelling, and for dates or times that do not exist.
fn scripts_time(text: &str) -> Option<SystemTime> {
    let bytes: &[u8; 24] = text.as_bytes().try_into().ok()?;
    let number = |from: usize, to: usize| {
        bytes[from..to].iter().try_fold(0_u64, |value, digit| {
            digit
                .is_ascii_digit()
                .then(|| value * 10 + u64::from(digit - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(at, byte)| bytes[at] != byte)
        || bytes[19] != b'.'
        || bytes[23] != b'Z'
    {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let millis = number(20, 23)?;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => return None,
    };
    if year < 1970 || day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, from 1970 on:
/// years counted from March, so that the leap day ends a year.
fn days_since_epoch(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days separate 0000-03-01 from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// Writes an instant as the scripts do (RFC 3339, UTC, milliseconds).
#[cfg(test)]
pub(super) fn format_time(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A duration in milliseconds, rounded up so a due time is never moved earlier.
fn ceil_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// A due time as schedule.lua takes it: kind and milliseconds, rounded up so that
/// a task never runs before the instant it was given. A new call has no run to count
/// from, so [`When::AfterStart`] is due at once.
pub(super) fn due_args(due: When) -> (&'static str, u64) {
    match due {
        When::Now | When::AfterStart(_) => ("now", 0),
        When::After(delay) => ("after", ceil_millis(delay)),
        When::At(when) => ("at", epoch_millis(when)),
    }
}

/// A rescheduled run's due time as finish.lua's `next_kind` and `next_ms`: `wait` for a
/// call that awaits a concurrency slot, `unserved` for one that awaits a worker serving
/// its task.
pub(super) fn next_args(next: Option<(When, Option<&Wait>)>) -> (&'static str, u64) {
    match next {
        None => ("", 0),
        Some((_, Some(Wait::Slot(_)))) => ("wait", 0),
        Some((_, Some(Wait::Server))) => ("unserved", 0),
        Some((when, None)) => due_after_run(when),
    }
}

/// A run's next due time when it waits for nothing.
fn due_after_run(when: When) -> (&'static str, u64) {
    match when {
        When::Now => ("after", 0),
        When::After(delay) => ("after", ceil_millis(delay)),
        When::At(when) => ("at", epoch_millis(when)),
        When::AfterStart(every) => ("start", ceil_millis(every)),
    }
}

/// A dead letter as claim.lua stores it (a JSON object; `error` is a `TaskError` JSON).
pub(super) fn dead_letter(key: String, json: &str) -> Result<DeadLetter> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::Protocol(format!("dead letter `{key}`: {e}")))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Ok(DeadLetter {
        function: field("function"),
        args: field("args"),
        error: TaskError::from_json(&field("error")).message().to_owned(),
        dead_at: field("dead_at"),
        key,
    })
}

/// The text of a reply value; `None` for nil, arrays and the like.
pub(super) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A stream entry's or hash's fields as text, from a flat `[field, value, ...]` array or
/// a RESP3 map. Values that are not text are left out (and then reported missing).
pub(super) fn text_fields(value: &Value) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    match value {
        Value::Array(items) => {
            fields.reserve(items.len() / 2);
            for pair in items.chunks_exact(2) {
                if let (Some(field), Some(value)) = (text(&pair[0]), text(&pair[1])) {
                    fields.insert(field, value);
                }
            }
        }
        Value::Map(pairs) => {
            fields.reserve(pairs.len());
            for (field, value) in pairs {
                if let (Some(field), Some(value)) = (text(field), text(value)) {
                    fields.insert(field, value);
                }
            }
        }
        _ => {}
    }
    fields
}

/// The entries of an `XREADGROUP` or `XREAD` reply, read straight from the reply (RESP2
/// arrays or a RESP3 map of streams): each id with its fields as text. No reply (a read
/// that timed out) is no entries; any other shape is an error, never entries silently
/// skipped.
///
/// # Errors
/// When the reply is not shaped as a stream read answers.
pub(super) fn stream_entries(reply: &Value) -> Result<Vec<(String, HashMap<String, String>)>> {
    let unexpected = || Error::Protocol(format!("a stream read answered {reply:?}"));
    let streams: Vec<&Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .iter()
            .map(|stream| match stream {
                Value::Array(pair) if pair.len() == 2 => Ok(&pair[1]),
                _ => Err(unexpected()),
            })
            .collect::<Result<_>>()?,
        Value::Map(streams) => streams.iter().map(|(_, entries)| entries).collect(),
        _ => return Err(unexpected()),
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            return Err(unexpected());
        };
        out.reserve(entries.len());
        for entry in entries {
            match entry {
                Value::Array(parts) if parts.len() == 2 => {
                    let id = text(&parts[0]).ok_or_else(unexpected)?;
                    out.push((id, text_fields(&parts[1])));
                }
                _ => return Err(unexpected()),
            }
        }
    }
    Ok(out)
}

/// What is wrong with a message that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Malformed {
    /// The offending field.
    pub field: &'static str,
    /// Missing, or the value that did not parse.
    pub problem: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}` {}", self.field, self.problem)
    }
}

fn required<'a>(
    fields: &'a HashMap<String, String>,
    field: &'static str,
) -> std::result::Result<&'a str, Malformed> {
    fields.get(field).map(String::as_str).ok_or(Malformed {
        field,
        problem: "is missing".into(),
    })
}

fn parsed<T: std::str::FromStr>(
    fields: &HashMap<String, String>,
    field: &'static str,
) -> std::result::Result<T, Malformed> {
    let value = required(fields, field)?;
    value.parse().map_err(|_| Malformed {
        field,
        problem: format!("has the unreadable value `{value}`"),
    })
}

/// Reads a message from its stream fields.
pub(super) fn parse_message(
    fields: &HashMap<String, String>,
) -> std::result::Result<Message, Malformed> {
    let when = required(fields, "when")?;
    Ok(Message {
        key: required(fields, "key")?.to_owned(),
        function: required(fields, "function")?.to_owned(),
        args: required(fields, "args")?.to_owned(),
        when: parse_time(when).ok_or_else(|| Malformed {
            field: "when",
            problem: format!("has the unreadable value `{when}`"),
        })?,
        attempt: parsed(fields, "attempt")?,
        generation: parsed(fields, "generation")?,
        traceparent: fields.get("traceparent").filter(|t| !t.is_empty()).cloned(),
    })
}

/// Reads an execution record (`{p}:runs:{key}`); `None` when the hash is empty.
///
/// # Errors
/// [`Error::Protocol`] naming the key and field when a field docket always writes is
/// missing or unreadable.
pub(super) fn parse_record(
    key: &str,
    fields: &HashMap<String, String>,
) -> Result<Option<ExecutionRecord>> {
    if fields.is_empty() {
        return Ok(None);
    }
    let bad = |malformed: Malformed| {
        Error::Protocol(format!("the record of `{key}` is unreadable: {malformed}"))
    };
    let state: ExecutionState = parsed(fields, "state").map_err(bad)?;
    let when = required(fields, "when").map_err(bad)?;
    let optional_time = |field: &'static str| -> Result<Option<SystemTime>> {
        match fields.get(field).filter(|value| !value.is_empty()) {
            None => Ok(None),
            Some(value) => parse_time(value).map(Some).ok_or_else(|| {
                bad(Malformed {
                    field,
                    problem: format!("has the unreadable value `{value}`"),
                })
            }),
        }
    };
    let message = Message {
        key: key.to_owned(),
        function: required(fields, "function").map_err(bad)?.to_owned(),
        args: required(fields, "args").map_err(bad)?.to_owned(),
        when: parse_time(when).ok_or_else(|| {
            bad(Malformed {
                field: "when",
                problem: format!("has the unreadable value `{when}`"),
            })
        })?,
        attempt: fields
            .get("attempt")
            .and_then(|attempt| attempt.parse().ok())
            .unwrap_or(1),
        generation: parsed(fields, "generation").map_err(bad)?,
        traceparent: fields.get("traceparent").filter(|t| !t.is_empty()).cloned(),
    };
    Ok(Some(ExecutionRecord {
        message,
        state,
        worker: fields.get("worker").filter(|w| !w.is_empty()).cloned(),
        started_at: optional_time("started_at")?,
        completed_at: optional_time("completed_at")?,
        error: fields
            .get("error")
            .filter(|e| !e.is_empty())
            .map(|e| TaskError::from_json(e)),
        has_result: fields.get("result_key").is_some_and(|r| !r.is_empty()),
        ttl: fields
            .get("ttl")
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis),
    }))
}

/// Reads a progress hash (`{p}:progress:{key}`); `None` when it is empty.
pub(super) fn parse_progress(fields: &HashMap<String, String>) -> Option<ProgressState> {
    if fields.is_empty() {
        return None;
    }
    Some(ProgressState {
        current: fields
            .get("current")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        total: fields.get("total").and_then(|t| t.parse().ok()),
        message: fields.get("message").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn message_fields() -> HashMap<String, String> {
        fields(&[
            ("key", "k1"),
            ("when", "2025-03-04T05:06:07.089Z"),
            ("function", "send_email"),
            ("args", r#"{"to":"a@b"}"#),
            ("attempt", "2"),
            ("generation", "7"),
        ])
    }

    #[test]
    fn rfc3339_round_trips_with_milliseconds() {
        let when = from_epoch_millis(1_741_064_767_089);
        assert_eq!(format_time(when), "2025-03-04T05:06:07.089Z");
        assert_eq!(parse_time("2025-03-04T05:06:07.089Z"), Some(when));
        assert_eq!(parse_time("2025-03-04T06:06:07.089+01:00"), Some(when));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(epoch_millis(when), 1_741_064_767_089);
        assert_eq!(epoch_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn the_scripts_spelling_reads_as_chrono_reads_it() {
        let chrono = |text: &str| {
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .map(SystemTime::from)
        };
        // Every day from 1970 to 2200 at a few times of day, leap days included.
        let mut millis = 0_u64;
        while millis < 7_258_118_400_000 {
            for offset in [0, 1, 43_199_999, 86_399_999] {
                let text = format_time(from_epoch_millis(millis + offset));
                assert_eq!(scripts_time(&text), chrono(&text), "{text}");
                assert!(scripts_time(&text).is_some(), "{text}");
            }
            millis += 86_400_000;
        }
        for text in [
            "2023-02-29T00:00:00.000Z",
            "2024-02-30T00:00:00.000Z",
            "2024-04-31T00:00:00.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-00-01T00:00:00.000Z",
            "2024-01-00T00:00:00.000Z",
            "2024-01-01T24:00:00.000Z",
            "2024-01-01T00:60:00.000Z",
            "2024-01-01T00:00:60.000Z",
            "2024-01-01 00:00:00.000Z",
            "2024-01-01T00:00:00.000+",
            "2024-01-01T00:00:00,000Z",
            "2024-01-01T00:00:0a.000Z",
            "1969-12-31T23:59:59.999Z",
            "+024-01-01T00:00:00.000Z",
        ] {
            assert_eq!(scripts_time(text), None, "{text}");
            assert_eq!(parse_time(text), chrono(text), "{text}");
        }
        assert_eq!(
            parse_time("1969-12-31T23:59:59.999Z"),
            Some(UNIX_EPOCH - Duration::from_millis(1))
        );
        assert_eq!(
            parse_time("2024-02-29T23:59:59.5Z"),
            chrono("2024-02-29T23:59:59.5Z")
        );
    }

    #[test]
    fn due_times_become_script_arguments() {
        assert_eq!(due_args(When::Now), ("now", 0));
        assert_eq!(
            due_args(When::After(Duration::from_millis(1500))),
            ("after", 1500)
        );
        assert_eq!(due_args(When::At(from_epoch_millis(42))), ("at", 42));
        // Sub-millisecond instants round up: never run before the time asked for.
        let just_after = from_epoch_millis(42) + Duration::from_micros(1);
        assert_eq!(due_args(When::At(just_after)), ("at", 43));
        assert_eq!(
            due_args(When::After(Duration::from_micros(1500))),
            ("after", 2)
        );
        let slot = Wait::Slot(crate::backend::Slot {
            scope: "s".into(),
            max: 1,
        });
        assert_eq!(next_args(None), ("", 0));
        assert_eq!(next_args(Some((When::Now, Some(&slot)))), ("wait", 0));
        assert_eq!(
            next_args(Some((When::Now, Some(&Wait::Server)))),
            ("unserved", 0)
        );
        assert_eq!(
            next_args(Some((When::AfterStart(Duration::from_secs(1)), None))),
            ("start", 1000)
        );
    }

    #[test]
    fn a_complete_message_parses() {
        let mut raw = message_fields();
        let message = parse_message(&raw).unwrap();
        assert_eq!(message.key, "k1");
        assert_eq!(message.function, "send_email");
        assert_eq!(message.args, r#"{"to":"a@b"}"#);
        assert_eq!(message.when, from_epoch_millis(1_741_064_767_089));
        assert_eq!((message.attempt, message.generation), (2, 7));
        assert_eq!(message.traceparent, None);

        raw.insert("traceparent".into(), "00-abc-def-01".into());
        assert_eq!(
            parse_message(&raw).unwrap().traceparent.as_deref(),
            Some("00-abc-def-01")
        );
    }

    #[test]
    fn a_malformed_message_names_its_field() {
        for field in ["key", "when", "function", "args", "attempt", "generation"] {
            let mut raw = message_fields();
            raw.remove(field);
            let malformed = parse_message(&raw).unwrap_err();
            assert_eq!(malformed.field, field);
            assert_eq!(malformed.to_string(), format!("field `{field}` is missing"));
        }
        let mut raw = message_fields();
        raw.insert("generation".into(), "seven".into());
        assert_eq!(
            parse_message(&raw).unwrap_err().to_string(),
            "field `generation` has the unreadable value `seven`"
        );
        let mut raw = message_fields();
        raw.insert("when".into(), "soon".into());
        assert_eq!(parse_message(&raw).unwrap_err().field, "when");
    }

    #[test]
    fn reply_values_become_text_fields() {
        let flat = Value::Array(vec![
            Value::BulkString(b"key".to_vec()),
            Value::BulkString(b"k1".to_vec()),
            Value::BulkString(b"attempt".to_vec()),
            Value::Int(3),
            Value::BulkString(b"odd".to_vec()),
            Value::Nil,
        ]);
        let parsed = text_fields(&flat);
        assert_eq!(parsed, fields(&[("key", "k1"), ("attempt", "3")]));
    }

    #[test]
    fn records_parse_with_optional_fields() {
        assert_eq!(parse_record("k", &HashMap::new()).unwrap(), None);
        let record = parse_record(
            "k",
            &fields(&[
                ("state", "FAILED"),
                ("generation", "3"),
                ("when", "2025-03-04T05:06:07.089Z"),
                ("function", "f"),
                ("args", "{}"),
                ("attempt", "2"),
                ("worker", "w1"),
                ("started_at", "2025-03-04T05:06:08.000Z"),
                ("completed_at", "2025-03-04T05:06:09.000Z"),
                ("error", r#"{"kind":"timed_out","message":"too slow"}"#),
                ("stream_id", "1-0"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(record.state, ExecutionState::Failed);
        assert_eq!((record.message.generation, record.message.attempt), (3, 2));
        assert_eq!(record.worker.as_deref(), Some("w1"));
        assert_eq!(
            record.started_at,
            Some(from_epoch_millis(1_741_064_768_000))
        );
        assert_eq!(
            record.completed_at,
            Some(from_epoch_millis(1_741_064_769_000))
        );
        let error = record.error.unwrap();
        assert!(error.is_timeout());
        assert_eq!(error.message(), "too slow");
        assert!(!record.has_result);
    }

    #[test]
    fn an_unreadable_record_names_key_and_field() {
        let error = parse_record("k9", &fields(&[("state", "ASLEEP")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("`k9`"), "{error}");
        assert!(error.contains("`state`"), "{error}");
    }

    #[test]
    fn progress_parses() {
        assert_eq!(parse_progress(&HashMap::new()), None);
        assert_eq!(
            parse_progress(&fields(&[
                ("current", "3"),
                ("total", "10"),
                ("message", "hi")
            ])),
            Some(ProgressState {
                current: 3,
                total: Some(10),
                message: Some("hi".into()),
            })
        );
        assert_eq!(
            parse_progress(&fields(&[("current", "1"), ("updated_at", "x")])),
            Some(ProgressState {
                current: 1,
                total: None,
                message: None,
            })
        );
    }

    #[test]
    fn stream_entries_read_resp2_and_resp3_replies_and_refuse_other_shapes() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let entry = |id: &str| {
            Value::Array(vec![
                bulk(id),
                Value::Array(vec![bulk("key"), bulk(id), bulk("attempt"), bulk("1")]),
            ])
        };
        let expected = |id: &str| {
            let fields = HashMap::from([
                ("key".to_owned(), id.to_owned()),
                ("attempt".to_owned(), "1".to_owned()),
            ]);
            (id.to_owned(), fields)
        };
        let resp2 = Value::Array(vec![Value::Array(vec![
            bulk("p:stream"),
            Value::Array(vec![entry("1-0"), entry("2-0")]),
        ])]);
        assert_eq!(
            stream_entries(&resp2).unwrap(),
            [expected("1-0"), expected("2-0")]
        );
        let resp3 = Value::Map(vec![(bulk("p:stream"), Value::Array(vec![entry("3-0")]))]);
        assert_eq!(stream_entries(&resp3).unwrap(), [expected("3-0")]);
        assert!(stream_entries(&Value::Nil).unwrap().is_empty());
        for odd in [
            Value::Int(3),
            Value::Array(vec![bulk("p:stream")]),
            Value::Array(vec![Value::Array(vec![bulk("p:stream"), Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                bulk("p:stream"),
                Value::Array(vec![bulk("1-0")]),
            ])]),
        ] {
            let error = stream_entries(&odd).unwrap_err().to_string();
            assert!(error.contains("a stream read answered"), "{error}");
        }
    }
}

#[cfg(test)]
mod bad_input {
    use proptest::prelude::*;

    use super::*;

    /// Field maps like those docket writes, each field present or not, with values
    /// that are right, wrong or arbitrary.
    fn fields() -> impl Strategy<Value = HashMap<String, String>> {
        let name = prop::sample::select(vec![
            "key",
            "function",
            "args",
            "when",
            "attempt",
            "generation",
            "traceparent",
            "state",
            "worker",
            "started_at",
            "completed_at",
            "error",
            "result_key",
            "ttl",
            "other",
        ]);
        let value = prop_oneof![
            Just("2026-12-07T10:00:00.000Z".to_owned()),
            Just("RUNNING".to_owned()),
            Just("3".to_owned()),
            Just(String::new()),
            ".{0,16}",
        ];
        prop::collection::hash_map(name.prop_map(str::to_owned), value, 0..14)
    }

    proptest! {
        #[test]
        fn no_stream_entry_panics_and_every_error_names_the_field(fields in fields()) {
            if let Err(malformed) = parse_message(&fields) {
                let text = malformed.to_string();
                prop_assert!(text.contains(malformed.field), "{text}");
            }
        }

        #[test]
        fn no_record_panics_and_every_error_names_the_key(
            key in ".{0,12}",
            fields in fields(),
        ) {
            if let Err(error) = parse_record(&key, &fields) {
                let text = error.to_string();
                prop_assert!(text.contains(&format!("`{key}`")), "{text}");
            }
        }
    }
}
