//! Exact counts of the commands clients send, apart from the commands scripts call.
//!
//! On Redis 7 `INFO commandstats` and `total_commands_processed` both count the commands
//! a Lua script calls, under their own names, so they cannot tell a client's `HGETALL`
//! from a script's. `MONITOR` can: it shows every command with its source, `[0 lua]` for
//! a script's. The counter stops at a sentinel `ECHO` the bench sends once the measured
//! part is over. `MONITOR` costs the server some work, so only the commands-per-task
//! scenario runs under it.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::server::Target;

/// Commands seen, by name: sent by clients, and called by scripts.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counts {
    pub client: BTreeMap<String, u64>,
    pub script: BTreeMap<String, u64>,
}

impl Counts {
    /// Commands sent by clients.
    pub(crate) fn client_total(&self) -> u64 {
        self.client.values().sum()
    }

    /// Commands called by scripts.
    pub(crate) fn script_total(&self) -> u64 {
        self.script.values().sum()
    }
}

/// A `MONITOR` connection counting commands in the background.
pub(crate) struct Monitor {
    reader: JoinHandle<Result<Counts>>,
    sentinel: String,
}

impl Monitor {
    /// Connects, starts `MONITOR`, and counts until [`finish`](Self::finish).
    pub(crate) async fn start(target: &Target, sentinel: String) -> Result<Self> {
        let stream = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .context("connecting the MONITOR client")?;
        let mut commands = Vec::new();
        if let Some(password) = &target.password {
            let mut auth = vec!["AUTH"];
            if let Some(user) = &target.user {
                auth.push(user);
            }
            auth.push(password);
            commands.push(auth);
        }
        commands.push(vec!["MONITOR"]);
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        for command in commands {
            write.write_all(&resp(&command)).await?;
            let reply = lines.next_line().await?.unwrap_or_default();
            if !reply.starts_with("+OK") {
                bail!("{} answered {reply}", command[0]);
            }
        }
        let end = sentinel.clone();
        let reader = tokio::spawn(async move {
            // Dropping the writing half would close the connection: keep it.
            let _write = write;
            let mut counts = Counts::default();
            while let Some(line) = lines.next_line().await? {
                let Some(seen) = parse(&line) else { continue };
                if !seen.script && seen.command == "echo" && seen.args.contains(&end) {
                    return Ok(counts);
                }
                if !seen.script
                    && seen.command == "config"
                    && seen.args.to_ascii_lowercase().starts_with("\"resetstat\"")
                {
                    continue;
                }
                let map = if seen.script {
                    &mut counts.script
                } else {
                    &mut counts.client
                };
                *map.entry(seen.command).or_default() += 1;
            }
            Err(anyhow!("the MONITOR connection closed before the sentinel"))
        });
        Ok(Self { reader, sentinel })
    }

    /// Sends the sentinel and returns the counts up to it.
    pub(crate) async fn finish(self, admin: &mut MultiplexedConnection) -> Result<Counts> {
        redis::cmd("ECHO")
            .arg(&self.sentinel)
            .query_async::<String>(admin)
            .await?;
        tokio::time::timeout(Duration::from_mins(2), self.reader)
            .await
            .context("waiting for the MONITOR counts")??
    }
}

/// A command in RESP.
fn resp(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend(format!("${}\r\n{part}\r\n", part.len()).bytes());
    }
    out
}

/// One `MONITOR` line, taken apart.
#[derive(Debug, PartialEq, Eq)]
struct Seen<'a> {
    /// Called by a script (`[0 lua]`).
    script: bool,
    /// The command, lower case.
    command: String,
    /// The quoted arguments after it.
    args: &'a str,
}

/// Parses `+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "abc" "1"`.
fn parse(line: &str) -> Option<Seen<'_>> {
    let line = line.strip_prefix('+')?;
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let script = line[open + 1..close].ends_with(" lua");
    let rest = line[close + 1..].trim_start().strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(Seen {
        script,
        command: rest[..end].to_ascii_lowercase(),
        args: rest[end + 1..].trim_start(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_monitor_lines() {
        let client = parse(r#"+1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "abc" "1""#);
        assert_eq!(
            client,
            Some(Seen {
                script: false,
                command: "evalsha".into(),
                args: r#""abc" "1""#
            })
        );
        let script = parse(r#"+1700000000.123456 [0 lua] "hset" "k" "f" "v""#).unwrap();
        assert!(script.script);
        assert_eq!(script.command, "hset");
        assert!(parse("+OK").is_none());
    }

    #[test]
    fn encodes_resp() {
        assert_eq!(resp(&["ECHO", "hi"]), b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
    }
}
