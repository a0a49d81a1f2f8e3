//! The Lua scripts, one per state transition, each prefixed with the shared prelude.
//!
//! A script runs with `EVALSHA`; on `NOSCRIPT` (a server that restarted or ran `SCRIPT
//! FLUSH`, or one that never saw it) it is loaded and run again, so scripts are loaded
//! lazily and never by hand.
//!
//! A process keeps only each script's hash. Its text (the prelude's items it uses, then
//! its body) is put together only when a server needs loading: sixteen whole copies of
//! the ~12 KB prelude, held for the life of every process, were a fifth of a worker's
//! heap.

use std::borrow::Cow;
use std::sync::LazyLock;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, Pipeline, RedisResult, ServerErrorKind, ToRedisArgs};

use super::prelude;

/// What a worker's script runs first (see the prelude on memory).
const WORKER_START: &str = "continue_when_out_of_memory()\n";

/// One script: the prelude's items it uses, how it starts after them, its body, and its
/// SHA-1.
pub(super) struct Script {
    prelude: Vec<usize>,
    start: &'static str,
    body: Cow<'static, str>,
    hash: String,
}

impl Script {
    fn new(start: &'static str, body: impl Into<Cow<'static, str>>) -> Self {
        let body = body.into();
        let prelude = prelude::needed_by(&[start, &body]);
        let mut script = Self {
            prelude,
            start,
            body,
            hash: String::new(),
        };
        let mut sha = sha1_smol::Sha1::new();
        script.parts().for_each(|part| sha.update(part.as_bytes()));
        script.hash = sha.digest().to_string();
        script
    }

    /// The pieces of the text, in order.
    fn parts(&self) -> impl Iterator<Item = &str> {
        prelude::pieces(&self.prelude).chain(["\n", self.start, &self.body])
    }

    /// The whole text, as `SCRIPT LOAD` sends it.
    pub(super) fn code(&self) -> String {
        self.parts().collect()
    }

    /// The prelude's items it keeps, by index.
    #[cfg(test)]
    pub(super) fn prelude_items(&self) -> &[usize] {
        &self.prelude
    }

    /// Its own text: how it starts, and its body.
    #[cfg(test)]
    pub(super) fn own_text(&self) -> [&str; 2] {
        [self.start, &self.body]
    }

    /// The SHA-1 `EVALSHA` names it by.
    #[cfg(test)]
    pub(super) fn hash(&self) -> &str {
        &self.hash
    }

    /// `SCRIPT LOAD` of this script.
    fn load_cmd(&self) -> Cmd {
        let mut cmd = redis::cmd("SCRIPT");
        cmd.arg("LOAD").arg(self.code());
        cmd
    }

    /// A call of this script, with no keys or arguments yet.
    pub(super) fn prepare_invoke(&self) -> Invocation<'_> {
        Invocation {
            script: self,
            keys: Cmd::new(),
            args: Cmd::new(),
        }
    }

    /// A call of this script, starting with `key`.
    pub(super) fn key<T: ToRedisArgs>(&self, key: T) -> Invocation<'_> {
        let mut invocation = self.prepare_invoke();
        invocation.key(key);
        invocation
    }

    /// A call of this script, starting with the argument `arg`.
    #[cfg(test)]
    pub(super) fn arg<T: ToRedisArgs>(&self, arg: T) -> Invocation<'_> {
        let mut invocation = self.prepare_invoke();
        invocation.arg(arg);
        invocation
    }
}

/// A script call being put together: keys and arguments, in any order.
pub(super) struct Invocation<'a> {
    script: &'a Script,
    /// The keys and the arguments, each written as they come (one buffer, not one
    /// allocation each).
    keys: Cmd,
    args: Cmd,
}

impl Invocation<'_> {
    pub(super) fn key<T: ToRedisArgs>(&mut self, key: T) -> &mut Self {
        self.keys.arg(key);
        self
    }

    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    /// `EVALSHA hash numkeys key... arg...`.
    fn eval_cmd(&self) -> Cmd {
        let words = || self.keys.args_iter().chain(self.args.args_iter());
        let (count, bytes) = words().fold((0, 0), |(count, bytes), word| match word {
            redis::Arg::Simple(word) => (count + 1, bytes + word.len()),
            _ => (count, bytes),
        });
        // Sized once: "EVALSHA", the hash, the number of keys (at most 20 digits).
        let mut cmd = Cmd::with_capacity(count + 3, bytes + 7 + self.script.hash.len() + 20);
        cmd.arg("EVALSHA")
            .arg(&self.script.hash)
            .arg(self.keys.args_iter().len());
        for word in words() {
            if let redis::Arg::Simple(word) = word {
                cmd.arg(word);
            }
        }
        cmd
    }

    /// Runs the call, loading the script first if the server does not have it.
    ///
    /// # Errors
    ///
    /// What the server or the connection answered.
    pub(super) async fn invoke_async<T: FromRedisValue>(
        &self,
        connection: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        let eval = self.eval_cmd();
        match eval.query_async(connection).await {
            Err(error) if error.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                let _: String = self.script.load_cmd().query_async(connection).await?;
                eval.query_async(connection).await
            }
            answer => answer,
        }
    }

    /// Adds the call to `pipeline` (which must load the script first: see
    /// [`load_into`]).
    pub(super) fn add_to(&self, pipeline: &mut Pipeline) {
        pipeline.add_command(self.eval_cmd()).ignore();
    }
}

/// Adds `SCRIPT LOAD` of `script` to `pipeline` (idempotent), for the calls that follow
/// it in the same round trip.
pub(super) fn load_into(pipeline: &mut Pipeline, script: &Script) {
    pipeline.add_command(script.load_cmd()).ignore();
}

/// Every script docket runs on Redis.
pub(super) struct Scripts {
    pub add: Script,
    pub schedule: Script,
    pub claim: Script,
    pub take: Script,
    pub finish: Script,
    pub promote: Script,
    pub renew: Script,
    pub reclaim: Script,
    pub cancel: Script,
    pub progress: Script,
    pub heartbeat: Script,
    pub strike: Script,
    pub admission: Script,
    pub wake: Script,
    pub clear: Script,
    pub counts: Script,
    pub live: Script,
    pub page: Script,
    pub listen: Script,
    pub unserved: Script,
}

impl Scripts {
    /// Every one of them.
    #[cfg(test)]
    pub(super) fn all(&self) -> [&Script; 20] {
        [
            &self.add,
            &self.schedule,
            &self.claim,
            &self.take,
            &self.finish,
            &self.promote,
            &self.renew,
            &self.reclaim,
            &self.cancel,
            &self.progress,
            &self.heartbeat,
            &self.strike,
            &self.admission,
            &self.wake,
            &self.clear,
            &self.counts,
            &self.live,
            &self.page,
            &self.listen,
            &self.unserved,
        ]
    }
}

/// A script of a producer's or a reader's: the prelude, then its body.
fn plain(body: &'static str) -> Script {
    Script::new("", body)
}

/// A script of the workers' (or an operator's) that keeps running while Redis is out
/// of memory: finishing work is what frees memory.
fn worker(body: &'static str) -> Script {
    Script::new(WORKER_START, body)
}

/// The scripts, hashed once per process.
pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    // A producer's script: refused, before it writes anything, while Redis is out of
    // memory under `noeviction` (schedule.lua says when it checks; see the prelude).
    schedule: plain(include_str!("lua/schedule.lua")),
    add: plain(include_str!("lua/add.lua")),
    claim: worker(include_str!("lua/claim.lua")),
    take: worker(include_str!("lua/take.lua")),
    finish: worker(include_str!("lua/finish.lua")),
    promote: worker(include_str!("lua/promote.lua")),
    renew: worker(include_str!("lua/renew.lua")),
    reclaim: worker(include_str!("lua/reclaim.lua")),
    cancel: worker(include_str!("lua/cancel.lua")),
    progress: worker(include_str!("lua/progress.lua")),
    heartbeat: worker(include_str!("lua/heartbeat.lua")),
    strike: worker(include_str!("lua/strike.lua")),
    admission: worker(include_str!("lua/admission.lua")),
    wake: worker(include_str!("lua/wake.lua")),
    clear: worker(include_str!("lua/clear.lua")),
    counts: plain(include_str!("lua/counts.lua")),
    live: plain(include_str!("lua/live.lua")),
    page: plain(include_str!("lua/page.lua")),
    // A waiter still registers while Redis is out of memory (one small member).
    listen: worker(include_str!("lua/listen.lua")),
    unserved: worker(include_str!("lua/unserved.lua")),
});

/// The prelude followed by `body`, for tests that probe the prelude's helpers.
#[cfg(test)]
pub(super) fn probe(body: &str) -> Script {
    Script::new("", body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (That the hash is the one Redis gives the text is checked against a server:
    /// `a_script_unknown_to_the_server_is_loaded_and_run`.)
    #[test]
    fn a_script_s_text_is_its_prelude_items_then_how_it_starts_then_its_body() {
        for script in SCRIPTS.all().into_iter().chain([&probe("return 1")]) {
            let code = script.code();
            let items: String = prelude::pieces(&script.prelude).collect();
            assert!(code.starts_with(&items));
            assert!(code[items.len()..].starts_with(&format!("\n{}", script.start)));
            assert!(code.ends_with(script.body.as_ref()));
            assert!(items.len() < prelude::PRELUDE.len(), "{code}");
        }
        assert!(
            SCRIPTS
                .claim
                .code()
                .contains(&format!("\n{WORKER_START}-- claim.lua"))
        );
        assert!(SCRIPTS.schedule.code().contains("\n\n-- schedule.lua"));
    }

    #[test]
    fn keys_come_before_arguments_whatever_the_order_they_were_given_in() {
        let script = probe("return 1");
        let mut invocation = script.arg("a1");
        invocation.key("k1").arg(2).key(&["k2", "k3"][..]);
        let words: Vec<Vec<u8>> = invocation
            .eval_cmd()
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => b"<not a simple argument>".to_vec(),
            })
            .collect();
        let expected: Vec<&[u8]> = vec![
            b"EVALSHA",
            script.hash.as_bytes(),
            b"3",
            b"k1",
            b"k2",
            b"k3",
            b"a1",
            b"2",
        ];
        assert_eq!(words, expected);
    }
}
