//! [`DeadLetter`]: a call given up on after its workers kept dying.

/// A call dead-lettered after it was delivered `max_deliveries` times without finishing
/// (its workers kept dying). Retry it with
/// [`Docket::retry_dead_letter`](crate::Docket::retry_dead_letter) or forget it with
/// [`Docket::purge_dead_letters`](crate::Docket::purge_dead_letters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The task key.
    pub key: String,
    /// The task's wire name.
    pub function: String,
    /// The arguments, a JSON object.
    pub args: String,
    /// Why it was dead-lettered.
    pub error: String,
    /// When it was dead-lettered (RFC 3339).
    pub dead_at: String,
}
