//! The Redis key layout of one docket, computed in one place.
//!
//! Every key and channel starts with the docket's prefix. On a standalone server the
//! prefix is the plain docket name; a cluster deployment hash-tags it (`{name}`) so that
//! every key of one docket lands in one slot. [`Keys::new`] is the only place that
//! decides the prefix; the Lua prelude derives per-task keys from the same prefix with
//! the same suffixes (a test checks the two agree).

/// The consumer group every worker of a docket reads through.
pub(super) const GROUP: &str = "docket-workers";

/// The key and channel names of one docket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Keys {
    prefix: String,
    /// The two keys every add, claim and finish names, written out once.
    stream: String,
    queue: String,
}

impl Keys {
    /// The layout of the docket `name` on a standalone server.
    pub(super) fn new(name: &str) -> Self {
        Self::with_prefix(name.to_owned())
    }

    /// The layout of the docket `name` on a cluster: the prefix is hash-tagged
    /// (`{name}`), so every key of the docket lands in one slot.
    pub(super) fn for_cluster(name: &str) -> Self {
        Self::with_prefix(format!("{{{name}}}"))
    }

    fn with_prefix(prefix: String) -> Self {
        Self {
            stream: format!("{prefix}:stream"),
            queue: format!("{prefix}:queue"),
            prefix,
        }
    }

    /// What every key and channel starts with (passed to every script as `ARGV[1]`).
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{p}:stream`: messages ready to run.
    pub(super) fn stream(&self) -> &str {
        &self.stream
    }

    /// `{p}:queue`: future tasks, key → due time in ms.
    pub(super) fn queue(&self) -> &str {
        &self.queue
    }

    /// `{p}:strikes`: the stream of strike instructions.
    pub(super) fn strikes(&self) -> String {
        format!("{}:strikes", self.prefix)
    }

    /// `{p}:{kind}:{scope}`: an admission check's state (`concurrency`, `cooldown`,
    /// `rate`); `waiting:{scope}` and `waiting-scopes` are named in the prelude.
    pub(super) fn admission(&self, kind: &str, scope: &str) -> String {
        format!("{}:{kind}:{scope}", self.prefix)
    }

    /// `{p}:dead-letters`: dead-lettered key → JSON (function, args, when, error).
    pub(super) fn dead_letters(&self) -> String {
        format!("{}:dead-letters", self.prefix)
    }

    /// `{p}:listeners`: subscription id → end of its lease in ms (per-task events are
    /// published only while one is live).
    pub(super) fn listeners(&self) -> String {
        format!("{}:listeners", self.prefix)
    }

    /// `{p}:workers`: worker → last heartbeat in ms.
    pub(super) fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// `{p}:lock:redelivery`: the lease of the worker sweeping abandoned messages.
    pub(super) fn redelivery_lock(&self) -> String {
        format!("{}:lock:redelivery", self.prefix)
    }

    /// `{p}:lock:{name}`: a lease some worker holds (`seed:{task}` for automatic tasks).
    pub(super) fn lock(&self, name: &str) -> String {
        format!("{}:lock:{name}", self.prefix)
    }

    /// `{p}:runs:{key}`: the execution record.
    pub(super) fn record(&self, key: &str) -> String {
        format!("{}:runs:{key}", self.prefix)
    }

    /// `{p}:progress:{key}`: the progress hash of a running task.
    pub(super) fn progress(&self, key: &str) -> String {
        format!("{}:progress:{key}", self.prefix)
    }

    /// `{p}:results:{key}:{generation}`: the stored result of one run.
    pub(super) fn result(&self, key: &str, generation: u64) -> String {
        format!("{}:results:{key}:{generation}", self.prefix)
    }

    /// `{p}:task-workers:{task}`: workers able to run `task`, → last heartbeat in ms.
    /// One interval of the activity history workers report with their heartbeats.
    pub(super) fn activity(&self, interval: u64) -> String {
        format!("{}:activity:{interval}", self.prefix)
    }

    pub(super) fn task_workers(&self, task: &str) -> String {
        format!("{}:task-workers:{task}", self.prefix)
    }

    /// `{p}:worker-tasks:{worker}`: the tasks a worker can run.
    pub(super) fn worker_tasks(&self, worker: &str) -> String {
        format!("{}:worker-tasks:{worker}", self.prefix)
    }

    /// Channel `{p}:state:{key}`: state events of one key.
    pub(super) fn state_channel(&self, key: &str) -> String {
        format!("{}:state:{key}", self.prefix)
    }

    /// Channel `{p}:progress:{key}`: progress events of one key.
    pub(super) fn progress_channel(&self, key: &str) -> String {
        format!("{}:progress:{key}", self.prefix)
    }

    /// The channel pattern matching every `{p}:cancel:{key}` channel.
    pub(super) fn cancel_pattern(&self) -> String {
        format!("{}:cancel:*", self.glob_prefix())
    }

    /// The channel pattern matching every channel of the docket: the one the guide's ACL
    /// rule (`&{p}:*`) grants to `PSUBSCRIBE`, which compares patterns literally.
    pub(super) fn docket_pattern(&self) -> String {
        format!("{}:*", self.glob_prefix())
    }

    /// The prefix with its glob characters escaped, to start a channel pattern.
    fn glob_prefix(&self) -> String {
        let mut escaped = String::with_capacity(self.prefix.len());
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        escaped
    }

    /// The task key a `{p}:state:{key}` or `{p}:progress:{key}` channel names, if it is
    /// one of ours.
    pub(super) fn key_of_event_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel.strip_prefix(self.prefix.as_str())?;
        rest.strip_prefix(":state:")
            .or_else(|| rest.strip_prefix(":progress:"))
    }

    /// The task key a `{p}:cancel:{key}` channel names, if it is one of ours.
    pub(super) fn key_of_cancel_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":cancel:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let keys = Keys::new("orders");
        assert_eq!(keys.stream(), "orders:stream");
        assert_eq!(keys.queue(), "orders:queue");
        assert_eq!(keys.workers(), "orders:workers");
        assert_eq!(keys.listeners(), "orders:listeners");
        assert_eq!(keys.redelivery_lock(), "orders:lock:redelivery");
        assert_eq!(keys.record("k1"), "orders:runs:k1");
        assert_eq!(keys.progress("k1"), "orders:progress:k1");
        assert_eq!(keys.result("k1", 3), "orders:results:k1:3");
        assert_eq!(keys.task_workers("send"), "orders:task-workers:send");
        assert_eq!(keys.worker_tasks("w1"), "orders:worker-tasks:w1");
        assert_eq!(keys.state_channel("k1"), "orders:state:k1");
        assert_eq!(keys.progress_channel("k1"), "orders:progress:k1");
    }

    #[test]
    fn channel_patterns_escape_glob_characters_of_the_name() {
        assert_eq!(Keys::new("orders").cancel_pattern(), "orders:cancel:*");
        let cluster = Keys::for_cluster("orders");
        assert_eq!(cluster.stream(), "{orders}:stream");
        assert_eq!(cluster.docket_pattern(), "{orders}:*");
        assert_eq!(Keys::new("orders").docket_pattern(), "orders:*");
        assert_eq!(
            Keys::new("a*b?[c]").cancel_pattern(),
            r"a\*b\?\[c\]:cancel:*"
        );
    }

    #[test]
    fn cancel_channels_name_their_key() {
        let keys = Keys::new("orders");
        assert_eq!(
            keys.key_of_cancel_channel("orders:cancel:k:with:colons"),
            Some("k:with:colons")
        );
        assert_eq!(keys.key_of_cancel_channel("other:cancel:k"), None);
        assert_eq!(keys.key_of_cancel_channel("orders:state:k"), None);
    }

    #[test]
    fn event_channels_name_their_key() {
        let keys = Keys::new("orders");
        for key in ["k", "k:with:colons", "state:k", "progress:k"] {
            assert_eq!(
                keys.key_of_event_channel(&keys.state_channel(key)),
                Some(key)
            );
            assert_eq!(
                keys.key_of_event_channel(&keys.progress_channel(key)),
                Some(key)
            );
        }
        assert_eq!(keys.key_of_event_channel("orders:cancel:k"), None);
        assert_eq!(keys.key_of_event_channel("other:state:k"), None);
    }
}
