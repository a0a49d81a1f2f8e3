//! The Redis server under test (started by the testkit's `RedisServer`, or given by
//! URL), the admin queries the scenarios read (`INFO`, `CONFIG RESETSTAT`, `FLUSHALL`),
//! and the ceilings every docket figure is compared with.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use redis::aio::MultiplexedConnection;

use crate::stats::rate;

/// Where the Redis server is, parsed from its `redis://` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub db: Option<u32>,
    /// Started by this run, so its data may be flushed between runs.
    pub owned: bool,
}

impl Target {
    /// Parses `redis://[user:password@]host[:port][/db]`.
    pub(crate) fn parse(url: &str, owned: bool) -> Result<Self> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| anyhow!("only redis:// URLs are supported, not {url}"))?;
        let (authority, db) = match rest.split_once('/') {
            Some((authority, db)) if !db.is_empty() => (
                authority,
                Some(db.parse().with_context(|| format!("bad db in {url}"))?),
            ),
            Some((authority, _)) => (authority, None),
            None => (rest, None),
        };
        let (credentials, address) = match authority.rsplit_once('@') {
            Some((credentials, address)) => (Some(credentials), address),
            None => (None, authority),
        };
        let (user, password) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((user, password))) => (
                Some(user.to_owned()).filter(|u| !u.is_empty()),
                Some(password.to_owned()),
            ),
            Some(None) => (None, credentials.map(str::to_owned)),
            None => (None, None),
        };
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse().with_context(|| format!("bad port in {url}"))?,
            ),
            None => (address, 6379),
        };
        Ok(Self {
            url: url.to_owned(),
            host: host.to_owned(),
            port,
            user,
            password,
            db,
            owned,
        })
    }

    /// Opens a new multiplexed connection.
    pub(crate) async fn connect(&self) -> Result<MultiplexedConnection> {
        let client = redis::Client::open(self.url.as_str())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }

    /// `redis-benchmark`'s host, port, database and credential arguments.
    fn benchmark_args(&self) -> Vec<String> {
        let mut args = vec![
            "-h".to_owned(),
            self.host.clone(),
            "-p".to_owned(),
            self.port.to_string(),
        ];
        if let Some(db) = self.db {
            args.extend(["--dbnum".to_owned(), db.to_string()]);
        }
        if let Some(user) = &self.user {
            args.extend(["--user".to_owned(), user.clone()]);
        }
        if let Some(password) = &self.password {
            args.extend(["-a".to_owned(), password.clone()]);
        }
        args
    }
}

/// `INFO section` as a map of its `name:value` lines.
pub(crate) async fn info(
    connection: &mut MultiplexedConnection,
    section: &str,
) -> Result<HashMap<String, String>> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(connection)
        .await?;
    Ok(docket_testkit::parse_info(&text))
}

/// One numeric field of `INFO section`.
pub(crate) async fn info_u64(
    connection: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> Result<u64> {
    info(connection, section)
        .await?
        .get(field)
        .ok_or_else(|| anyhow!("INFO {section} has no {field}"))?
        .parse()
        .with_context(|| format!("INFO {section} {field}"))
}

/// Calls per command since the last `CONFIG RESETSTAT`, from `INFO commandstats`
/// (`config|resetstat` itself left out). On Redis 7 these include the commands scripts
/// call, under their own names.
pub(crate) async fn commandstats(
    connection: &mut MultiplexedConnection,
) -> Result<BTreeMap<String, u64>> {
    command_field(connection, "calls=").await
}

/// Microseconds Redis spent inside each command since the last `CONFIG RESETSTAT`
/// (`usec=` of `INFO commandstats`; a script's time includes the commands it calls,
/// which are counted under their own names too).
pub(crate) async fn command_usec(
    connection: &mut MultiplexedConnection,
) -> Result<BTreeMap<String, u64>> {
    command_field(connection, "usec=").await
}

/// One field (`calls=`, `usec=`) of every command's `INFO commandstats` line
/// (`config|resetstat` itself left out).
async fn command_field(
    connection: &mut MultiplexedConnection,
    field: &str,
) -> Result<BTreeMap<String, u64>> {
    let mut values = BTreeMap::new();
    for (name, value) in info(connection, "commandstats").await? {
        let Some(command) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        if command == "config|resetstat" {
            continue;
        }
        values.insert(command.to_owned(), stat_field(&value, field)?);
    }
    Ok(values)
}

/// One field (`calls=`, `usec=`) of a command's `INFO commandstats` line.
fn stat_field(line: &str, name: &str) -> Result<u64> {
    Ok(line
        .split(',')
        .find_map(|field| field.strip_prefix(name))
        .ok_or_else(|| anyhow!("no {name} in {line}"))?
        .parse()?)
}

/// Calls of one command and the microseconds Redis spent inside them, since the last
/// `CONFIG RESETSTAT` (its `INFO commandstats` line; zeros before its first call).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CommandTime {
    calls: u64,
    usec: u64,
}

impl CommandTime {
    /// Microseconds per call between `earlier` and this reading (0 without calls).
    pub(crate) fn usec_per_call_since(self, earlier: Self) -> f64 {
        let calls = self.calls.saturating_sub(earlier.calls);
        if calls == 0 {
            return 0.0;
        }
        crate::stats::count64(self.usec.saturating_sub(earlier.usec)) / crate::stats::count64(calls)
    }
}

/// `command`'s calls and time so far, from `INFO commandstats`.
pub(crate) async fn command_time(
    connection: &mut MultiplexedConnection,
    command: &str,
) -> Result<CommandTime> {
    let stats = info(connection, "commandstats").await?;
    let Some(value) = stats.get(&format!("cmdstat_{command}")) else {
        return Ok(CommandTime::default());
    };
    Ok(CommandTime {
        calls: stat_field(value, "calls=")?,
        usec: stat_field(value, "usec=")?,
    })
}

/// `CONFIG RESETSTAT`: zeroes `INFO commandstats` and `INFO stats`.
pub(crate) async fn reset_stats(connection: &mut MultiplexedConnection) -> Result<()> {
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(connection)
        .await?;
    Ok(())
}

/// `FLUSHALL` (only ever called on a server this run started).
pub(crate) async fn flushall(connection: &mut MultiplexedConnection) -> Result<()> {
    // Freed in the background, so that emptying millions of keys does not outlast the
    // connection's response timeout; then waited for, so that the next scenario starts
    // from memory already given back.
    redis::cmd("FLUSHALL")
        .arg("ASYNC")
        .query_async::<()>(connection)
        .await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while info_u64(connection, "memory", "lazyfree_pending_objects").await? > 0 {
        if std::time::Instant::now() > deadline {
            anyhow::bail!("FLUSHALL ASYNC still freeing objects after 2 minutes");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Checks whether `INFO stats` `total_commands_processed` counts the commands scripts
/// call: an `EVAL` calling `SET`, `GET` and `INCR` between two `INFO stats`. The delta is
/// 5 when it does (the first `INFO`, the `EVAL` and its three calls), 2 when not.
pub(crate) async fn script_calls_counted(
    connection: &mut MultiplexedConnection,
    key: &str,
) -> Result<serde_json::Value> {
    let before = info_u64(connection, "stats", "total_commands_processed").await?;
    redis::cmd("EVAL")
        .arg("redis.call('SET', KEYS[1], '1'); redis.call('GET', KEYS[1]); redis.call('INCR', KEYS[1]); return 1")
        .arg(1)
        .arg(key)
        .query_async::<()>(connection)
        .await?;
    let after = info_u64(connection, "stats", "total_commands_processed").await?;
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(connection)
        .await?;
    let delta = after.saturating_sub(before);
    Ok(serde_json::json!({
        "experiment": "INFO stats; EVAL calling SET, GET, INCR; INFO stats",
        "total_commands_processed_delta": delta,
        "includes_script_calls": delta >= 5,
    }))
}

/// The ceilings' script: one whole queue cycle — `XADD`, `XREADGROUP`, `XACK`, `XDEL` —
/// in one call, the message carrying `ARGV[1]` as its one field (`v` for `L`). It
/// creates the group when it is missing and leaves the stream empty.
const CYCLE_SCRIPT: &str = r"
local stream = KEYS[1]
redis.call('XADD', stream, '*', 'f', ARGV[1])
local read = redis.pcall('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', stream, '>')
if type(read) == 'table' and read.err then
    redis.call('XGROUP', 'CREATE', stream, 'g', '0', 'MKSTREAM')
    read = redis.call('XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', 1, 'STREAMS', stream, '>')
end
local id = read[1][2][1][1]
redis.call('XACK', stream, 'g', id)
redis.call('XDEL', stream, id)
return 1
";

/// Whole queue cycles per second, one script call each carrying `field` (`L` with `v`,
/// `L_d` with d bytes), driven by `redis-benchmark -c 50 -n requests EVALSHA`. Checks
/// that the stream ends empty.
pub(crate) async fn cycle_ceiling(
    target: &Target,
    connection: &mut MultiplexedConnection,
    stream: &str,
    field: &str,
    requests: usize,
) -> Result<f64> {
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(CYCLE_SCRIPT)
        .query_async(connection)
        .await?;
    // The setup call creates the group.
    redis::cmd("EVALSHA")
        .arg(&sha)
        .arg(1)
        .arg(stream)
        .arg(field)
        .query_async::<()>(connection)
        .await?;
    let requests = requests.to_string();
    let rate = redis_benchmark(
        target,
        &[
            "-c", "50", "-n", &requests, "-q", "EVALSHA", &sha, "1", stream, field,
        ],
    )
    .await?;
    let left: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(connection)
        .await?;
    redis::cmd("DEL")
        .arg(stream)
        .query_async::<()>(connection)
        .await?;
    if left != 0 {
        bail!("the cycle script left {left} messages in {stream}");
    }
    Ok(rate)
}

/// `RTT1`: sequential `SET key v` from one multiplexed redis-rs connection, per second,
/// and this process's CPU time per command in µs.
pub(crate) async fn single_client_rate(
    target: &Target,
    key: &str,
    commands: usize,
) -> Result<(f64, f64)> {
    let mut connection = target.connect().await?;
    let cpu_before = crate::child::cpu_ms();
    let started = Instant::now();
    for _ in 0..commands {
        redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query_async::<()>(&mut connection)
            .await?;
    }
    let elapsed = started.elapsed();
    let cpu = (crate::child::cpu_ms() - cpu_before) * 1e3 / crate::stats::count(commands);
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut connection)
        .await?;
    Ok((rate(commands, elapsed), cpu))
}

/// `redis-benchmark -c 1 -n requests -q SET key v`, for reference beside `RTT1`.
pub(crate) async fn benchmark_single_client(
    target: &Target,
    key: &str,
    requests: usize,
) -> Result<f64> {
    let requests = requests.to_string();
    let rate =
        redis_benchmark(target, &["-c", "1", "-n", &requests, "-q", "SET", key, "v"]).await?;
    let mut connection = target.connect().await?;
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut connection)
        .await?;
    Ok(rate)
}

/// Runs `redis-benchmark` against the target and returns its requests per second.
pub(crate) async fn redis_benchmark(target: &Target, args: &[&str]) -> Result<f64> {
    let output = tokio::process::Command::new("redis-benchmark")
        .args(target.benchmark_args())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running redis-benchmark (is it on PATH?)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "redis-benchmark failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    requests_per_second(&text)
        .ok_or_else(|| anyhow!("no `requests per second` in redis-benchmark's output: {text}"))
}

/// The final `N requests per second` of `redis-benchmark -q` output (progress lines are
/// separated by carriage returns).
fn requests_per_second(output: &str) -> Option<f64> {
    output
        .split(['\r', '\n'])
        .filter_map(|line| line.split_once(" requests per second"))
        .filter_map(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let t = Target::parse("redis://127.0.0.1:6390/0", true).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.db),
            ("127.0.0.1", 6390, Some(0))
        );
        let t = Target::parse("redis://bob:pw@localhost", false).unwrap();
        assert_eq!(t.user.as_deref(), Some("bob"));
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert_eq!(t.port, 6379);
        assert!(Target::parse("rediss://x", false).is_err());
    }

    #[test]
    fn parses_benchmark_output() {
        let out = "SET k v: rps=33232.0 (overall: 33131.5) avg_msec=0.024\r\
                   SET k v: 37119.52 requests per second, p50=0.023 msec\n";
        assert!((requests_per_second(out).unwrap() - 37119.52).abs() < 1e-6);
        assert!(requests_per_second("nothing").is_none());
    }
}
