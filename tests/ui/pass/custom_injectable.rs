//! `#[inject]` takes a user type implementing `FromExecution`; `#[arg]` carries a type
//! whose name is on the built-in list as data.

use docket::{Call, Execution, FromExecution, Task};
use serde::{Deserialize, Serialize};

/// The tenant a task runs for, from its key (`tenant/job`).
struct Tenant(String);

impl FromExecution for Tenant {
    type Rejection = String;

    async fn from_execution(execution: &Execution) -> Result<Self, Self::Rejection> {
        match execution.key().split_once('/') {
            Some((tenant, _)) => Ok(Self(tenant.to_owned())),
            None => Err(format!("key `{}` names no tenant", execution.key())),
        }
    }
}

/// A data type that happens to be called `Span`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Span {
    start: u32,
    end: u32,
}

#[docket::task]
async fn reindex(#[inject] tenant: Tenant, shard: u32, #[arg] span: Span) -> String {
    format!("{} {shard} {}..{}", tenant.0, span.start, span.end)
}

fn main() {
    let call = Reindex::new(7, Span { start: 1, end: 9 });
    assert_eq!(call.span, Span { start: 1, end: 9 });
    let _: Call = call.into();
    let _: <Reindex as Task>::Output = String::new();
    let registration = docket::__private::registered()
        .find(|task| task.name() == "reindex")
        .unwrap();
    assert_eq!(registration.parameters(), ["shard", "span"]);
}
