//! What an operator does from the dashboard: cancel, run now, replace the arguments,
//! strike and restore, retry and purge dead letters — one at a time, or in bulk on a
//! selection or on everything a filter matches, after a confirmation that names the
//! count. Each action is checked ([`super::access`]) and logged once, naming who did
//! what to how many.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::access::{Peer, Who};
use super::pages::layout::{self, Base, Chrome};
use super::pages::tasks::filter_of;
use super::scan::{self, Filter};
use super::{App, State};
use crate::model::{Listing, Operator, Strike, When, check_strike_value, parse_strike_value};

/// The most tasks one bulk action on a filter looks through.
const BULK_LOOK_LIMIT: usize = 100_000;

/// A posted form's fields, in order (a field may repeat: `key=a&key=b`).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        Self(
            text.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(name), decode(value))
                })
                .collect(),
        )
    }

    /// The first non-empty value of `name`.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A form value decoded: `+` is a space, `%XX` a byte (a `%` not followed by two hex
/// digits is kept as it is).
fn decode(text: &str) -> String {
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', _, _) => out.push(b' '),
            (b'%', Some(high), Some(low)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 2;
            }
            (byte, _, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An action that could not be done, and why.
struct Refused(StatusCode, String);

impl From<crate::Error> for Refused {
    fn from(error: crate::Error) -> Self {
        let status = match error {
            crate::Error::InvalidOption { .. } | crate::Error::PayloadTooLarge { .. } => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        Self(status, error.to_string())
    }
}

/// What an action did: where to go next, or a page to show.
enum Done {
    Redirect(String),
    Page(Markup),
}

pub(super) async fn act(
    AxumState(app): State,
    Path(action): Path<String>,
    Extension(base): Extension<Base>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = Fields::parse(&body);
    let chrome = Chrome::new(&app, &base, &headers, "Action");
    let proof = match app.access.check_post(&headers, fields.get("csrf")) {
        Ok(proof) => proof,
        Err((status, why)) => {
            tracing::warn!(target: "docket::dashboard::audit", docket = %app.docket.name(),
                who = %peer.0, action = %action, "refused: {why}");
            return layout::problem(&chrome, status, &why);
        }
    };
    let who = Who {
        peer: peer.0,
        proof,
    };
    let done = match action.as_str() {
        "cancel" => one_key(&app, &who, &fields, "cancel").await,
        "run-now" => one_key(&app, &who, &fields, "run-now").await,
        "replace" => replace(&app, &who, &fields).await,
        "strike" | "restore" => strike(&app, &who, &fields, action == "strike").await,
        "bulk" => bulk(&app, &chrome, &who, &fields).await,
        other => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no action `{other}`"),
        )),
    };
    match done {
        Ok(Done::Redirect(to)) => Redirect::to(&format!("{}{to}", base.href)).into_response(),
        Ok(Done::Page(body)) => layout::html(StatusCode::OK, chrome.page(body)),
        Err(Refused(status, why)) => layout::problem(&chrome, status, &why),
    }
}

fn audit(app: &App, who: &Who, action: &str, count: usize, what: &str) {
    tracing::info!(target: "docket::dashboard::audit", docket = %app.docket.name(),
        who = %who, action, count, "{what}");
}

fn required<'a>(fields: &'a Fields, name: &'static str) -> Result<&'a str, Refused> {
    fields
        .get(name)
        .ok_or_else(|| Refused(StatusCode::BAD_REQUEST, format!("the form has no `{name}`")))
}

/// Does `op` to one task key; how many it changed (0 or 1).
async fn apply(app: &App, op: &str, key: &str) -> Result<usize, Refused> {
    let docket = &app.docket;
    let changed = match op {
        "cancel" => docket.cancel(key).await?,
        "run-now" => docket.run_again(key, None, When::Now).await?.is_some(),
        "retry" => docket.retry_dead_letter(key).await?.is_some(),
        "purge" => docket.purge_dead_letter(key).await?,
        other => {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                format!("no bulk action `{other}`"),
            ));
        }
    };
    Ok(usize::from(changed))
}

async fn one_key(app: &App, who: &Who, fields: &Fields, op: &str) -> Result<Done, Refused> {
    let key = required(fields, "key")?;
    let count = apply(app, op, key).await?;
    audit(app, who, op, count, &format!("key {key}"));
    Ok(Done::Redirect(format!("run?key={}", layout::encode(key))))
}

async fn replace(app: &App, who: &Who, fields: &Fields) -> Result<Done, Refused> {
    let key = required(fields, "key")?;
    let args = required(fields, "args")?;
    let record = app.docket.get_execution(key).await?;
    let Some(record) = record else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("no record of the key `{key}`"),
        ));
    };
    let record = record.record().await?;
    // A parked call keeps its due time; any other runs now.
    let due = match record {
        Some(record) if record.state == crate::ExecutionState::Scheduled => {
            When::At(record.message.when)
        }
        _ => When::Now,
    };
    let placed = app.docket.run_again(key, Some(args), due).await?;
    audit(
        app,
        who,
        "replace",
        usize::from(placed.is_some()),
        &format!("key {key}"),
    );
    Ok(Done::Redirect(format!("run?key={}", layout::encode(key))))
}

async fn strike(app: &App, who: &Who, fields: &Fields, strike: bool) -> Result<Done, Refused> {
    let bad = |why: String| Refused(StatusCode::BAD_REQUEST, why);
    let task = fields.get("task").map(str::trim).filter(|t| !t.is_empty());
    let parameter = fields
        .get("parameter")
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let made = match (task, parameter) {
        (None, None) => return Err(bad("a strike names a task, a parameter, or both".into())),
        (Some(task), None) => Strike::task(task),
        (task, Some(parameter)) => {
            let operator: Operator = fields
                .get("operator")
                .unwrap_or("==")
                .parse()
                .map_err(bad)?;
            let value = parse_strike_value(fields.get("value").unwrap_or_default()).map_err(bad)?;
            check_strike_value(operator, &value).map_err(bad)?;
            let condition = Strike::when(parameter, operator, value);
            match task {
                Some(task) => condition.for_task(task),
                None => condition,
            }
        }
    };
    let action = if strike { "strike" } else { "restore" };
    if strike {
        app.docket.strike(made.clone()).await?;
    } else {
        app.docket.restore(made.clone()).await?;
    }
    audit(app, who, action, 1, &made.to_string());
    Ok(Done::Redirect("strikes".to_owned()))
}

/// What a bulk action applies to.
enum Targets {
    /// Dead letters (by key).
    DeadLetters,
    /// Live tasks of a listing.
    Live(Listing),
}

async fn bulk(app: &App, chrome: &Chrome<'_>, who: &Who, fields: &Fields) -> Result<Done, Refused> {
    let op = required(fields, "op")?;
    let list = required(fields, "list")?;
    let targets =
        if list == "dead-letters" {
            Targets::DeadLetters
        } else {
            Targets::Live(Listing::from_name(list).ok_or_else(|| {
                Refused(StatusCode::BAD_REQUEST, format!("unknown list `{list}`"))
            })?)
        };
    let allowed = match targets {
        Targets::DeadLetters => ["retry", "purge"].contains(&op),
        Targets::Live(_) => ["cancel", "run-now"].contains(&op),
    };
    if !allowed {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("`{op}` does not apply to {list}"),
        ));
    }
    let filter = filter_of(fields.get("task"), fields.get("q"));
    let by_filter = fields.get("scope") == Some("filter");
    let keys = if by_filter {
        keys_matching(app, &targets, &filter).await?
    } else {
        fields.all("key")
    };
    if keys.is_empty() {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "nothing is selected".into(),
        ));
    }
    let verb = match op {
        "cancel" => "Cancel",
        "run-now" => "Run now",
        "retry" => "Retry",
        _ => "Purge",
    };
    let what = match &targets {
        Targets::DeadLetters => "dead letters".to_owned(),
        Targets::Live(listing) => format!("{} tasks", listing.as_str()),
    };
    let confirmed = fields.get("confirm").and_then(|n| n.parse::<usize>().ok());
    // Confirmed for another count (tasks came or went since): ask again, with the count
    // as it is now.
    let changed = confirmed.filter(|count| *count != keys.len());
    if confirmed.is_none() || changed.is_some() {
        let described = if by_filter {
            describe(&filter)
        } else {
            "selected".to_owned()
        };
        return Ok(Done::Page(html! {
            h1 { (verb) " " (layout::count(keys.len())) " " (what) "?" }
            @if let Some(before) = changed {
                p.problem { "The count changed since you confirmed " (before) ": it is " (keys.len()) " now." }
            }
            p.confirm { (verb) " " strong.confirm-count { (keys.len()) } " " (what) " (" (described) ")." }
            form.bulk action="actions/bulk" method="post" {
                (chrome.csrf())
                @for (name, value) in &fields.0 {
                    @if name != "csrf" && name != "confirm" { input type="hidden" name=(name) value=(value); }
                }
                input type="hidden" name="confirm" value=(keys.len());
                button.danger type="submit" { "Yes, " (verb.to_lowercase()) " " (keys.len()) }
                a href=(back(&targets)) { "No, go back" }
            }
        }));
    }
    let mut done = 0;
    for key in &keys {
        done += apply(app, op, key).await?;
    }
    let scope = if by_filter {
        describe(&filter)
    } else {
        "selected".to_owned()
    };
    audit(
        app,
        who,
        op,
        done,
        &format!("bulk on {what} ({scope}), {} asked", keys.len()),
    );
    Ok(Done::Page(html! {
        h1 { (verb) ": done" }
        p.done { "Done for " strong.done-count { (done) } " of the " (keys.len()) " " (what) "." }
        p { a href=(back(&targets)) { "Back to the " (what) } }
    }))
}

fn back(targets: &Targets) -> String {
    match targets {
        Targets::DeadLetters => "dead-letters".to_owned(),
        Targets::Live(listing) => format!("tasks?list={}", listing.as_str()),
    }
}

fn describe(filter: &Filter) -> String {
    match (&filter.task, &filter.value) {
        (None, None) => "all of them".to_owned(),
        (Some(task), None) => format!("task {task}"),
        (None, Some(value)) => format!("an argument matching {value:?}"),
        (Some(task), Some(value)) => format!("task {task} with an argument matching {value:?}"),
    }
}

/// The keys a filter matches now.
async fn keys_matching(
    app: &App,
    targets: &Targets,
    filter: &Filter,
) -> Result<Vec<String>, Refused> {
    match targets {
        Targets::DeadLetters => Ok(app
            .docket
            .dead_letters()
            .await?
            .into_iter()
            .map(|letter| letter.key)
            .collect()),
        Targets::Live(listing) => {
            let found = scan::scan(
                &app.docket,
                &[*listing],
                filter,
                None,
                BULK_LOOK_LIMIT,
                BULK_LOOK_LIMIT,
            )
            .await?;
            Ok(found
                .records
                .into_iter()
                .map(|record| record.message.key)
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_and_repeat() {
        let fields = Fields::parse(b"key=a%20b&key=c+d&csrf=x&empty=&bad=%zz");
        assert_eq!(fields.all("key"), ["a b", "c d"]);
        assert_eq!(fields.get("csrf"), Some("x"));
        assert_eq!(fields.get("empty"), None);
        assert_eq!(fields.get("bad"), Some("%zz"));
        assert_eq!(decode("%3Cscript%3E"), "<script>");
        assert_eq!(decode("100%"), "100%");
    }
}
