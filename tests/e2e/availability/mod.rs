//! Redis as production runs it: write refusals, rotating credentials, options in the
//! URL, and Sentinel failovers.

mod credentials;
mod refusals;
mod sentinel;

use crate::support::RedisServer;

/// Runs `args` on `server`, panicking with what it said otherwise.
fn command(server: &RedisServer, args: &[&str]) {
    let mut cmd = ::redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    let _: ::redis::Value = cmd
        .query(&mut server.connection())
        .unwrap_or_else(|error| panic!("{args:?}: {error}"));
}
