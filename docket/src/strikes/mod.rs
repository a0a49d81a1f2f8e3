//! Strikes: operators' instructions that block work by task and by argument.
//!
//! A strike names a task, a condition on a parameter, or both. Instructions go to the
//! docket's `{p}:strikes` stream; every [`Docket`](crate::Docket) replays it when it
//! connects and follows it live, so every producer and worker of the fleet sees a strike
//! within moments. A stricken call is refused at `add` (disposition STRUCK, nothing
//! written) and, if it was added before the strike, cancelled when a worker would run it.
//!
//! ```
//! use docket::strikes::{Operator, Strike};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! #[docket::task]
//! async fn process_order(customer_id: String, amount: u64) {}
//!
//! let docket = docket::Docket::connect("doc-strikes", "memory://doc-strikes").await?;
//! docket.strike(Strike::when("customer_id", Operator::Equal, "problematic-customer")
//!     .for_task("process_order")).await?;
//!
//! let blocked = docket.add(ProcessOrder::new("problematic-customer".into(), 10)).await?;
//! assert_eq!(blocked.disposition(), docket::Disposition::Struck);
//! let fine = docket.add(ProcessOrder::new("someone-else".into(), 10)).await?;
//! assert_eq!(fine.disposition(), docket::Disposition::Scheduled);
//!
//! docket.restore(Strike::when("customer_id", Operator::Equal, "problematic-customer")
//!     .for_task("process_order")).await?;
//! assert!(docket.strikes().is_empty());
//! # Ok(()) }
//! ```

mod follow;

pub(crate) use follow::{StrikeFollower, Strikes};

pub use crate::model::{Operator, Strike};
