//! Looking through live tasks for those that match a filter, a bounded number of
//! records per request: a search on a docket of a million tasks answers as fast as on
//! an empty one, says how far it looked, and goes on from there when asked.

use crate::client::Docket;
use crate::error::Result;
use crate::model::{ExecutionRecord, Listing};

/// Records read per page of a scan.
const SCAN_PAGE: usize = 500;

/// Records one request looks at, at most.
pub(super) const SCAN_BUDGET: usize = 5_000;

/// What to look for: a task by name, a value among the arguments, or either.
#[derive(Debug, Clone, Default)]
pub(super) struct Filter {
    /// The task's name, exactly.
    pub task: Option<String>,
    /// A value one of the arguments has (a string containing it, or any value whose
    /// JSON is it).
    pub value: Option<String>,
    /// Either matches (the search box), rather than both.
    pub either: bool,
}

impl Filter {
    pub(super) fn is_empty(&self) -> bool {
        self.task.is_none() && self.value.is_none()
    }

    pub(super) fn matches(&self, record: &ExecutionRecord) -> bool {
        let message = &record.message;
        let task = self.task.as_deref().map(|task| message.function == task);
        let value = self
            .value
            .as_deref()
            .map(|value| args_have(&message.args, value));
        match (task, value) {
            (None, None) => true,
            (Some(one), None) | (None, Some(one)) => one,
            (Some(task), Some(value)) if self.either => task || value,
            (Some(task), Some(value)) => task && value,
        }
    }
}

/// Whether one of the arguments (at any depth) is or contains `wanted`.
fn args_have(args: &str, wanted: &str) -> bool {
    fn walk(value: &serde_json::Value, wanted: &str) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains(wanted),
            serde_json::Value::Array(items) => items.iter().any(|item| walk(item, wanted)),
            serde_json::Value::Object(fields) => fields.values().any(|item| walk(item, wanted)),
            other => serde_json::to_string(other).is_ok_and(|text| text == wanted),
        }
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(value) => walk(&value, wanted),
        Err(_) => args.contains(wanted),
    }
}

/// Where a scan stopped: a listing and the cursor within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    pub listing: Listing,
    pub after: Option<String>,
}

impl Position {
    /// As text for a link: `queued` or `queued:CURSOR`.
    pub(super) fn to_text(&self) -> String {
        match &self.after {
            Some(after) => format!("{}:{after}", self.listing.as_str()),
            None => self.listing.as_str().to_owned(),
        }
    }

    pub(super) fn from_text(text: &str) -> Option<Self> {
        let (listing, after) = match text.split_once(':') {
            Some((listing, after)) => (listing, Some(after.to_owned())),
            None => (text, None),
        };
        Some(Self {
            listing: Listing::from_name(listing)?,
            after,
        })
    }
}

/// What a scan found.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub records: Vec<ExecutionRecord>,
    /// Records looked at.
    pub looked: usize,
    /// Where to go on from, when it stopped before the end.
    pub resume: Option<Position>,
}

/// Looks through `listings` in order from `from`, until `want` matches are found or
/// `budget` records were looked at (whole pages at a time, so it resumes exactly).
pub(super) async fn scan(
    docket: &Docket,
    listings: &[Listing],
    filter: &Filter,
    from: Option<Position>,
    want: usize,
    budget: usize,
) -> Result<Found> {
    let mut found = Found::default();
    let start = from
        .as_ref()
        .and_then(|from| listings.iter().position(|l| *l == from.listing))
        .unwrap_or(0);
    let mut after = from.and_then(|from| from.after);
    for listing in listings.iter().skip(start) {
        loop {
            if found.records.len() >= want || found.looked >= budget {
                found.resume = Some(Position {
                    listing: *listing,
                    after,
                });
                return Ok(found);
            }
            let page = docket.page(*listing, after.as_deref(), SCAN_PAGE).await?;
            found.looked += page.records.len();
            found.records.extend(
                page.records
                    .into_iter()
                    .filter(|record| filter.matches(record)),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        after = None;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_values_match_at_any_depth() {
        let args = r#"{"customer":{"email":"ada@example.com","tier":3},"tags":["vip"]}"#;
        assert!(args_have(args, "ada@example"));
        assert!(args_have(args, "3"));
        assert!(args_have(args, "vip"));
        assert!(!args_have(args, "customer"), "keys are not values");
        assert!(!args_have(args, "4"));
    }

    #[test]
    fn positions_read_back_from_their_text() {
        for position in [
            Position {
                listing: Listing::Queued,
                after: None,
            },
            Position {
                listing: Listing::Running,
                after: Some("17-0".into()),
            },
        ] {
            assert_eq!(Position::from_text(&position.to_text()), Some(position));
        }
        assert_eq!(Position::from_text("nowhere"), None);
    }
}
