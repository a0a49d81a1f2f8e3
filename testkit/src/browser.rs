//! A headless Chromium that a test drives the way a person would: Debian's
//! `chromedriver` on a free loopback port, one W3C `WebDriver` session in it, and a
//! small client of that protocol written here (JSON over HTTP/1.1 on a plain loopback
//! socket: no HTTP or `WebDriver` crate).
//!
//! Nothing leaves the machine: the driver listens on 127.0.0.1 only, and Chromium runs
//! with its background services off, host names other than `localhost` unresolvable
//! and every non-loopback request sent to a dead loopback proxy.

use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdTcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::names::{free_port, unique};

/// What to do when `chromedriver` or `chromium` is missing.
const INSTALL_HINT: &str = "the browser tests need Debian's `chromium` and `chromium-driver`: \
     run `.ci/run`, or `apt-get install chromium chromium-driver`";
/// Where `chromedriver` is looked for after `PATH`.
const DRIVER_PATHS: &[&str] = &["/usr/bin/chromedriver"];
/// Where `chromium` is looked for after `PATH`.
const CHROMIUM_PATHS: &[&str] = &["/usr/bin/chromium", "/usr/lib/chromium/chromium"];
/// The binary behind Debian's `/usr/bin/chromium` launcher script.
const CHROMIUM_BINARY: &str = "/usr/lib/chromium/chromium";
/// How long `chromedriver` has to answer `GET /status`.
const DRIVER_READY_WITHIN: Duration = Duration::from_secs(20);
/// How many free ports are tried when another process takes the one chosen.
const LAUNCH_ATTEMPTS: u32 = 3;
/// How long one `WebDriver` command may take, Chromium's start included.
const COMMAND_WITHIN: Duration = Duration::from_secs(90);
/// How long a page has to load, and a script to run, before the driver gives up.
const PAGE_LOAD_MS: u64 = 30_000;
/// How often the waits poll.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// How long `Drop` gives the driver to close the session (and so Chromium).
const QUIT_WITHIN: Duration = Duration::from_secs(10);
/// The key under which W3C `WebDriver` passes an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How many of its last log lines a driver that did not come up shows.
const LOG_LINES_SHOWN: usize = 20;

/// Chromium's flags: headless, in a fresh profile, and kept to loopback.
fn chromium_args(profile: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        // No traffic but to loopback: no background fetches or pings, no name lookups
        // (IP literals and `localhost` still work), and any other request goes to a
        // proxy port on 127.0.0.1 where nothing listens (loopback bypasses proxies).
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-client-side-phishing-detection",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-breakpad",
        "--no-pings",
        "--metrics-recording-only",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args
}

/// What went wrong: a missing binary, a driver that did not start, a `WebDriver` command
/// that failed (naming the command and the selector or URL it was for), a wait that
/// ran out, or a file that could not be written.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrowserError {
    /// `chromedriver` or `chromium` is not installed; the message says how to install
    /// them.
    NotInstalled {
        /// The program not found.
        program: &'static str,
        /// Where it was looked for.
        looked: String,
    },
    /// `chromedriver` did not start or answer; the message has its log's last lines.
    Launch(String),
    /// The driver answered a command with a `WebDriver` error.
    Command {
        /// The command, as `METHOD /path` below the session (`POST /element`).
        command: String,
        /// What it was for: the selector, URL, script or element.
        target: String,
        /// The `WebDriver` error code (`no such element`, `no such alert`, ...).
        error: String,
        /// The driver's message.
        message: String,
    },
    /// The driver could not be reached, or its answer could not be read.
    Transport {
        /// The command, as in [`BrowserError::Command`].
        command: String,
        /// What it was for.
        target: String,
        /// What failed.
        message: String,
    },
    /// A wait ([`Browser::wait_for`], [`Browser::wait_until_text`]) ran out.
    TimedOut {
        /// What was awaited.
        what: String,
        /// For how long.
        within: Duration,
        /// What was seen last instead.
        last: String,
    },
    /// A file (a screenshot) could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

impl BrowserError {
    /// The `WebDriver` error code of a [`BrowserError::Command`] (`no such element`,
    /// `stale element reference`, `unexpected alert open`, ...).
    pub fn webdriver_error(&self) -> Option<&str> {
        match self {
            Self::Command { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled { program, looked } => {
                write!(f, "`{program}` not found ({looked}); {INSTALL_HINT}")
            }
            Self::Launch(message) => f.write_str(message),
            Self::Command {
                command,
                target,
                error,
                message,
            } => write!(
                f,
                "WebDriver `{command}` for {target} failed: {error}: {message}"
            ),
            Self::Transport {
                command,
                target,
                message,
            } => write!(
                f,
                "WebDriver `{command}` for {target}: no answer from chromedriver: {message}"
            ),
            Self::TimedOut { what, within, last } => {
                write!(
                    f,
                    "timed out after {within:?} waiting for {what}; last seen: {last}"
                )
            }
            Self::Io { path, source } => write!(f, "cannot write `{}`: {source}", path.display()),
        }
    }
}

impl std::error::Error for BrowserError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A `WebDriver` session in a `chromedriver` on a loopback port.
#[derive(Debug)]
struct Session {
    port: u16,
    id: String,
}

impl Session {
    /// Sends `method /session/{id}{path}` with `body` and returns the answer's `value`.
    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        target: &str,
    ) -> Result<Value, BrowserError> {
        let full = format!("/session/{}{path}", self.id);
        driver_command(self.port, method, &full, body.as_ref())
            .await
            .map_err(|failure| failure.into_error(&format!("{method} {path}"), target))
    }
}

/// Why a command to the driver failed, before it is given its name and target.
enum Failure {
    Transport(String),
    WebDriver { error: String, message: String },
}

impl Failure {
    fn into_error(self, command: &str, target: &str) -> BrowserError {
        let (command, target) = (command.to_owned(), target.to_owned());
        match self {
            Self::Transport(message) => BrowserError::Transport {
                command,
                target,
                message,
            },
            Self::WebDriver { error, message } => BrowserError::Command {
                command,
                target,
                error,
                message,
            },
        }
    }
}

/// One command to the driver at `127.0.0.1:port`: its answer's `value`, or the
/// `WebDriver` error it answered with.
async fn driver_command(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, Failure> {
    let request = http_request(port, method, path, body);
    let exchange = async {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
        stream.write_all(&request).await?;
        let mut answer = Vec::with_capacity(16 * 1024);
        loop {
            answer.reserve(16 * 1024);
            let n = stream.read_buf(&mut answer).await?;
            match parse_response(&answer, n == 0) {
                Parsed::Incomplete => {}
                Parsed::Done(status, body) => return Ok((status, body)),
                Parsed::Bad(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            }
        }
    };
    let (status, body) = tokio::time::timeout(COMMAND_WITHIN, exchange)
        .await
        .map_err(|_| Failure::Transport(format!("no answer within {COMMAND_WITHIN:?}")))?
        .map_err(|error| Failure::Transport(error.to_string()))?;
    webdriver_value(status, &body)
}

/// The `value` of a `WebDriver` answer, or the error it carries.
fn webdriver_value(status: u16, body: &[u8]) -> Result<Value, Failure> {
    let answer: Value = serde_json::from_slice(body).map_err(|error| {
        Failure::Transport(format!(
            "HTTP {status} with a body that is not JSON ({error}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    let mut value = match answer {
        Value::Object(mut fields) => fields.remove("value").unwrap_or(Value::Null),
        other => other,
    };
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // chromedriver starts its messages with the code again.
        let message = message
            .strip_prefix(error)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(message);
        return Err(Failure::WebDriver {
            error: error.to_owned(),
            message: message.trim().to_owned(),
        });
    }
    if status == 200 {
        Ok(value.take())
    } else {
        Err(Failure::WebDriver {
            error: format!("HTTP {status}"),
            message: value.to_string(),
        })
    }
}

/// `method path` to `127.0.0.1:port`, with `body` as JSON.
fn http_request(port: u16, method: &str, path: &str, body: Option<&Value>) -> Vec<u8> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    request.push_str("\r\n");
    request.push_str(&body);
    request.into_bytes()
}

/// An HTTP response read so far.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// More is to come.
    Incomplete,
    /// The status and the whole body.
    Done(u16, Vec<u8>),
    /// Not HTTP, or cut short.
    Bad(String),
}

/// Reads an HTTP/1.1 response from `bytes` (all that came so far; `closed` when the
/// peer has closed the connection): by `Content-Length`, chunked, or up to the close.
fn parse_response(bytes: &[u8], closed: bool) -> Parsed {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if closed {
            Parsed::Bad(format!(
                "connection closed before the headers ended: {:?}",
                String::from_utf8_lossy(bytes)
            ))
        } else {
            Parsed::Incomplete
        };
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let Some(status) = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return Parsed::Bad(format!("not an HTTP status line: {status_line:?}"));
    };
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) => length = Some(n),
                Err(_) => return Parsed::Bad(format!("bad Content-Length {value:?}")),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = &bytes[head_end + 4..];
    if chunked {
        match decode_chunked(body) {
            Some(decoded) => Parsed::Done(status, decoded),
            None if closed => Parsed::Bad("connection closed inside a chunked body".into()),
            None => Parsed::Incomplete,
        }
    } else if let Some(length) = length {
        if body.len() >= length {
            Parsed::Done(status, body[..length].to_vec())
        } else if closed {
            Parsed::Bad(format!(
                "connection closed after {} of {length} body bytes",
                body.len()
            ))
        } else {
            Parsed::Incomplete
        }
    } else if closed {
        Parsed::Done(status, body.to_vec())
    } else {
        Parsed::Incomplete
    }
}

/// A chunked body, once its last chunk has come (`None` until then, or when it is
/// malformed).
fn decode_chunked(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(decoded);
        }
        if body.len() < size + 2 {
            return None;
        }
        decoded.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Standard base64 (as `WebDriver` sends screenshots), or `None` when `text` is not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0_u32, 0_u32);
    for byte in text.bytes() {
        let sextet = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b'\r' | b'\n' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(sextet);
        count += 6;
        if count >= 8 {
            count -= 8;
            decoded.push((bits >> count).to_le_bytes()[0]);
            bits &= (1 << count) - 1;
        }
    }
    Some(decoded)
}

/// `text` as one path segment: everything but unreserved characters percent-encoded.
fn path_segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// `DELETE /session/{id}` with a plain blocking socket, for `Drop`, which cannot await.
fn delete_session_blocking(port: u16, id: &str) -> io::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = StdTcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(QUIT_WITHIN))?;
    stream.set_write_timeout(Some(QUIT_WITHIN))?;
    stream.write_all(&http_request(
        port,
        "DELETE",
        &format!("/session/{id}"),
        None,
    ))?;
    let mut answer = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        answer.extend_from_slice(&chunk[..n]);
        match parse_response(&answer, n == 0) {
            Parsed::Incomplete => {}
            Parsed::Done(..) => return Ok(()),
            Parsed::Bad(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
        }
    }
}

/// The first executable `name` on `PATH`, else the first executable of `fallbacks`.
fn find_program(name: &'static str, fallbacks: &[&str]) -> Result<PathBuf, BrowserError> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join(name))
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| BrowserError::NotInstalled {
            program: name,
            looked: format!("looked on PATH and at {}", fallbacks.join(", ")),
        })
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

/// Debian's `/usr/bin/chromium` is a shell script that sources `/etc/chromium.d/`
/// (Google API keys, remote extensions) before it runs the real binary: run that
/// binary directly, with only this module's flags.
fn behind_launcher(chromium: PathBuf) -> PathBuf {
    let mut start = [0; 2];
    let script = File::open(&chromium)
        .and_then(|mut file| file.read_exact(&mut start))
        .is_ok_and(|()| &start == b"#!");
    if script && is_executable(Path::new(CHROMIUM_BINARY)) {
        PathBuf::from(CHROMIUM_BINARY)
    } else {
        chromium
    }
}

/// The last lines of `log`, for a failure message.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..].join("\n")
}

/// A temporary directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // Chromium's last writes into the profile may race the first removal.
        for _ in 0..5 {
            if fs::remove_dir_all(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A `chromedriver` process, in a process group of its own (with the Chromium it
/// starts), killed on drop.
#[derive(Debug)]
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: the driver and any Chromium process it left.
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium driven over W3C `WebDriver`, through a `chromedriver` this
/// program started on a free loopback port.
///
/// Dropping it (also while unwinding from a panic) closes the session, which quits
/// Chromium, then kills the driver's process group by its pid and removes the
/// temporary profile.
///
/// ```no_run
/// # async fn demo() -> Result<(), docket_testkit::BrowserError> {
/// use std::time::Duration;
/// use docket_testkit::Browser;
///
/// let browser = Browser::start().await?;
/// browser.goto("http://127.0.0.1:8080/").await?;
/// browser.find("button#retry").await?.click().await?;
/// browser
///     .wait_until_text("#status", "queued", Duration::from_secs(5))
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Browser {
    session: Arc<Session>,
    // Dropped in this order: the driver is killed, then its directory removed.
    driver: Driver,
    dir: TempDir,
}

impl Browser {
    /// Starts `chromedriver` on a free loopback port and opens a session in a headless
    /// Chromium (1280×900, a fresh profile in a temporary directory).
    ///
    /// # Errors
    /// [`BrowserError::NotInstalled`] when `chromedriver` or `chromium` is missing (the
    /// message says to run `.ci/run` or install `chromium chromium-driver`);
    /// [`BrowserError::Launch`] when the driver does not come up; the session command's
    /// error when Chromium does not start.
    pub async fn start() -> Result<Self, BrowserError> {
        let driver_binary = find_program("chromedriver", DRIVER_PATHS)?;
        let chromium = behind_launcher(find_program("chromium", CHROMIUM_PATHS)?);
        let dir = TempDir(std::env::temp_dir().join(unique("docket-browser")));
        let profile = dir.0.join("profile");
        fs::create_dir_all(&profile).map_err(|error| {
            BrowserError::Launch(format!("cannot create `{}`: {error}", profile.display()))
        })?;
        let log = dir.0.join("chromedriver.log");
        let (driver, port) = launch_driver(&driver_binary, &log).await?;
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // A dialog stays open until the test looks at it.
                    "unhandledPromptBehavior": "ignore",
                    "timeouts": { "pageLoad": PAGE_LOAD_MS, "script": PAGE_LOAD_MS, "implicit": 0 },
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": chromium_args(&profile),
                    },
                },
            },
        });
        let session = driver_command(port, "POST", "/session", Some(&capabilities))
            .await
            .map_err(|failure| {
                let error = failure.into_error("POST /session", &chromium.display().to_string());
                BrowserError::Launch(format!(
                    "{error}\nchromedriver's log ({}):\n{}",
                    log.display(),
                    log_tail(&log)
                ))
            })?;
        let id = session
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                BrowserError::Launch(format!("`POST /session` gave no sessionId: {session}"))
            })?
            .to_owned();
        Ok(Self {
            session: Arc::new(Session { port, id }),
            driver,
            dir,
        })
    }

    /// Opens `url` and waits for it to load.
    ///
    /// # Errors
    /// When the driver fails the navigation (say, the page does not load in 30 s).
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.session
            .command("POST", "/url", Some(json!({ "url": url })), url)
            .await
            .map(drop)
    }

    /// The URL of the page shown.
    ///
    /// # Errors
    /// When the driver fails the command.
    pub async fn current_url(&self) -> Result<String, BrowserError> {
        let value = self
            .session
            .command("GET", "/url", None, "the current page")
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The page's HTML, as the browser serializes its DOM now.
    ///
    /// # Errors
    /// When the driver fails the command.
    pub async fn source(&self) -> Result<String, BrowserError> {
        let value = self
            .session
            .command("GET", "/source", None, "the current page")
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching the CSS selector `css`.
    ///
    /// # Errors
    /// When none matches ([`BrowserError::webdriver_error`] is `no such element`) or
    /// the selector is invalid.
    pub async fn find(&self, css: &str) -> Result<Element, BrowserError> {
        let target = format!("`{css}`");
        let value = self
            .session
            .command("POST", "/element", Some(locator(css)), &target)
            .await?;
        self.element(&value, css, &target)
    }

    /// Every element matching the CSS selector `css`, in document order (none is no
    /// error).
    ///
    /// # Errors
    /// When the selector is invalid or the driver fails the command.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, BrowserError> {
        let target = format!("`{css}`");
        let value = self
            .session
            .command("POST", "/elements", Some(locator(css)), &target)
            .await?;
        value
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|reference| self.element(reference, css, &target))
            .collect()
    }

    /// Polls until an element matches `css`, and returns the first.
    ///
    /// # Errors
    /// [`BrowserError::TimedOut`] when none matched within `within`; any other
    /// failure of the command at once.
    pub async fn wait_for(&self, css: &str, within: Duration) -> Result<Element, BrowserError> {
        let start = Instant::now();
        loop {
            match self.find(css).await {
                Ok(element) => return Ok(element),
                Err(error) if error.webdriver_error() == Some("no such element") => {
                    if start.elapsed() >= within {
                        return Err(BrowserError::TimedOut {
                            what: format!("an element matching `{css}`"),
                            within,
                            last: format!("none on {}", self.url_for_message().await),
                        });
                    }
                }
                Err(error) => return Err(error),
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls until an element matching `css` has a text containing `needle`, and
    /// returns that element.
    ///
    /// # Errors
    /// [`BrowserError::TimedOut`] when none did within `within`, with the texts seen
    /// last; any other failure of the commands at once.
    pub async fn wait_until_text(
        &self,
        css: &str,
        needle: &str,
        within: Duration,
    ) -> Result<Element, BrowserError> {
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for element in self.find_all(css).await? {
                match element.text().await {
                    Ok(text) if text.contains(needle) => return Ok(element),
                    Ok(text) => seen.push(text),
                    // Replaced between the search and the read: search again.
                    Err(error) if error.webdriver_error() == Some("stale element reference") => {}
                    Err(error) => return Err(error),
                }
            }
            if start.elapsed() >= within {
                return Err(BrowserError::TimedOut {
                    what: format!("an element matching `{css}` with text containing {needle:?}"),
                    within,
                    last: if seen.is_empty() {
                        format!("no such element on {}", self.url_for_message().await)
                    } else {
                        format!("texts {seen:?}")
                    },
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Runs `script` as the body of a function in the page, with `args` as its
    /// `arguments` (an [`Element::as_arg`] arrives as the DOM element), and returns
    /// what it returned.
    ///
    /// # Errors
    /// When the script throws (`javascript error`) or the driver fails the command.
    pub async fn execute(&self, script: &str, args: &[Value]) -> Result<Value, BrowserError> {
        let target = format!("script {:?}", truncate(script, 80));
        self.session
            .command(
                "POST",
                "/execute/sync",
                Some(json!({ "script": script, "args": args })),
                &target,
            )
            .await
    }

    /// The text of the JavaScript dialog (`alert`, `confirm`, `prompt`) open now, or
    /// `None` when there is none. A dialog stays open until [`Browser::dismiss_alert`];
    /// while it is, other commands fail with `unexpected alert open`.
    ///
    /// # Errors
    /// When the driver fails the command otherwise.
    pub async fn alert_text(&self) -> Result<Option<String>, BrowserError> {
        match self
            .session
            .command("GET", "/alert/text", None, "the open dialog")
            .await
        {
            Ok(value) => Ok(Some(value.as_str().unwrap_or_default().to_owned())),
            Err(error) if error.webdriver_error() == Some("no such alert") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Dismisses the open JavaScript dialog.
    ///
    /// # Errors
    /// When there is none (`no such alert`) or the driver fails the command.
    pub async fn dismiss_alert(&self) -> Result<(), BrowserError> {
        self.session
            .command("POST", "/alert/dismiss", Some(json!({})), "the open dialog")
            .await
            .map(drop)
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    ///
    /// # Errors
    /// When the driver fails the command or the file cannot be written.
    pub async fn screenshot_png(&self, path: impl AsRef<Path>) -> Result<(), BrowserError> {
        let path = path.as_ref();
        let target = format!("`{}`", path.display());
        let value = self
            .session
            .command("GET", "/screenshot", None, &target)
            .await?;
        let png =
            value
                .as_str()
                .and_then(decode_base64)
                .ok_or_else(|| BrowserError::Transport {
                    command: "GET /screenshot".into(),
                    target,
                    message: "the screenshot is not a base64 string".into(),
                })?;
        fs::write(path, png).map_err(|source| BrowserError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Resizes the window to `width`×`height` CSS pixels.
    ///
    /// # Errors
    /// When the driver fails the command.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        self.session
            .command(
                "POST",
                "/window/rect",
                Some(json!({ "width": width, "height": height })),
                &format!("{width}x{height}"),
            )
            .await
            .map(drop)
    }

    /// The port `chromedriver` listens on (127.0.0.1).
    pub fn driver_port(&self) -> u16 {
        self.session.port
    }

    /// The process id of `chromedriver`, which leads the process group of the
    /// Chromium it started.
    pub fn driver_pid(&self) -> u32 {
        self.driver.0.id()
    }

    /// The directory of Chromium's temporary profile and `chromedriver.log`.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// An element from a `WebDriver` element reference.
    fn element(&self, reference: &Value, css: &str, target: &str) -> Result<Element, BrowserError> {
        let id = reference
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| BrowserError::Transport {
                command: "POST /element".into(),
                target: target.to_owned(),
                message: format!("not an element reference: {reference}"),
            })?;
        Ok(Element {
            session: Arc::clone(&self.session),
            id: id.to_owned(),
            selector: css.to_owned(),
        })
    }

    /// The current URL for an error message, or why it is unknown.
    async fn url_for_message(&self) -> String {
        match self.current_url().await {
            Ok(url) => format!("`{url}`"),
            Err(error) => format!("an unknown page ({error})"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session quits Chromium; `driver` then kills what is left.
        let _ = delete_session_blocking(self.session.port, &self.session.id);
    }
}

/// A CSS-selector locator.
fn locator(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

/// At most `max` characters of `text`, with `...` when cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// An element of the page, found by [`Browser::find`], [`Browser::find_all`] or a
/// wait. It goes stale (its commands fail with `stale element reference`) once the
/// page replaces it.
#[derive(Debug, Clone)]
pub struct Element {
    session: Arc<Session>,
    id: String,
    selector: String,
}

impl Element {
    /// The CSS selector it was found by.
    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// The element as an argument to [`Browser::execute`]: the script gets the DOM
    /// element.
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// Clicks it (scrolling it into view first), as a person would.
    ///
    /// # Errors
    /// When it cannot be clicked (hidden, covered, stale).
    pub async fn click(&self) -> Result<(), BrowserError> {
        self.command("POST", "/click", Some(json!({})))
            .await
            .map(drop)
    }

    /// Its rendered text (what a person sees: hidden parts left out).
    ///
    /// # Errors
    /// When it is stale or the driver fails the command.
    pub async fn text(&self) -> Result<String, BrowserError> {
        let value = self.command("GET", "/text", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The attribute `name` (its property where there is one, such as an input's
    /// current `value`), or `None` when it has none.
    ///
    /// # Errors
    /// When it is stale or the driver fails the command.
    pub async fn attr(&self, name: &str) -> Result<Option<String>, BrowserError> {
        let path = format!("/attribute/{}", path_segment(name));
        let value = self.command("GET", &path, None).await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Types `text` into it (focusing it first).
    ///
    /// # Errors
    /// When it cannot take keys (not interactable, stale).
    pub async fn send_keys(&self, text: &str) -> Result<(), BrowserError> {
        self.command("POST", "/value", Some(json!({ "text": text })))
            .await
            .map(drop)
    }

    /// Empties an input or text area.
    ///
    /// # Errors
    /// When it is not editable or stale.
    pub async fn clear(&self) -> Result<(), BrowserError> {
        self.command("POST", "/clear", Some(json!({})))
            .await
            .map(drop)
    }

    async fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let path = format!("/element/{}{path}", self.id);
        let target = format!("the element `{}`", self.selector);
        self.session.command(method, &path, body, &target).await
    }
}

/// Starts `chromedriver` on a free loopback port (another when the one chosen was
/// taken first) and waits until it answers `GET /status` ready.
async fn launch_driver(binary: &Path, log: &Path) -> Result<(Driver, u16), BrowserError> {
    let mut last = String::new();
    for _ in 0..LAUNCH_ATTEMPTS {
        let port = free_port();
        let output = File::create(log).map_err(|error| {
            BrowserError::Launch(format!("cannot create `{}`: {error}", log.display()))
        })?;
        let errors = output.try_clone().map_err(|error| {
            BrowserError::Launch(format!("cannot open `{}`: {error}", log.display()))
        })?;
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(errors)
            // Its own group, which Chromium joins: killed as one on drop.
            .process_group(0)
            .spawn()
            .map_err(|error| {
                BrowserError::Launch(format!(
                    "cannot run `{}`: {error}; {INSTALL_HINT}",
                    binary.display()
                ))
            })?;
        let mut driver = Driver(child);
        let start = Instant::now();
        loop {
            match driver_command(port, "GET", "/status", None).await {
                Ok(status) if status.get("ready").and_then(Value::as_bool) == Some(true) => {
                    return Ok((driver, port));
                }
                Ok(status) => last = format!("not ready: {status}"),
                Err(Failure::Transport(message)) => last = message,
                Err(Failure::WebDriver { error, message }) => last = format!("{error}: {message}"),
            }
            if let Ok(Some(exit)) = driver.0.try_wait() {
                last = format!("it exited ({exit}) with:\n{}", log_tail(log));
                break;
            }
            if start.elapsed() >= DRIVER_READY_WITHIN {
                return Err(BrowserError::Launch(format!(
                    "`{} --port={port}` did not answer `GET /status` within \
                     {DRIVER_READY_WITHIN:?} ({last}); its log:\n{}",
                    binary.display(),
                    log_tail(log)
                )));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
    Err(BrowserError::Launch(format!(
        "`{}` did not start in {LAUNCH_ATTEMPTS} tries on free loopback ports; last: {last}",
        binary.display()
    )))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use serde_json::json;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    use super::{
        Browser, Parsed, decode_base64, decode_chunked, find_program, parse_response, path_segment,
    };
    use crate::names::unique;

    const WITHIN: Duration = Duration::from_secs(10);
    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

    /// A form, a button whose script changes a text, an element that comes late, and a
    /// script tag that the server escaped into text.
    const FORM: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>docket dashboard</title></head>
<body>
<h1>Queues</h1>
<input id="name" value="draft">
<button id="go" onclick="document.getElementById('status').textContent =
  'hello ' + document.getElementById('name').value">Go</button>
<p id="status" class="line">waiting</p>
<p class="line" data-kind="escaped">&lt;script&gt;alert(1)&lt;/script&gt;</p>
<script>
setTimeout(() => {
  const late = document.createElement('p');
  late.id = 'late';
  late.textContent = 'arrived';
  document.body.appendChild(late);
}, 300);
</script>
</body></html>"#;

    /// A page whose script opens a dialog.
    const ALERTS: &str =
        "<!doctype html><html><body><p>x</p><script>alert('from the page')</script></body></html>";

    /// Serves `FORM` at `/` and `ALERTS` at `/alert` on a loopback port, HTTP/1.1 by
    /// hand, one request per connection; returns the base URL.
    async fn serve() -> String {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("local address").port()
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(respond(stream));
            }
        });
        base
    }

    async fn respond(mut stream: TcpStream) {
        let mut request = Vec::new();
        let mut chunk = [0; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let request = String::from_utf8_lossy(&request);
        let path = request.split(' ').nth(1).unwrap_or("/");
        let (status, body) = match path {
            "/" => ("200 OK", FORM),
            "/alert" => ("200 OK", ALERTS),
            _ => ("404 Not Found", "not found"),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    #[tokio::test]
    async fn browser_clicks_waits_sees_dialogs_and_takes_screenshots() {
        let base = serve().await;
        let browser = Browser::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        browser
            .goto(&format!("{base}/"))
            .await
            .expect("open the form");
        assert_eq!(browser.current_url().await.unwrap(), format!("{base}/"));
        assert!(browser.source().await.unwrap().contains("<h1>Queues</h1>"));
        assert_eq!(
            browser.find("h1").await.unwrap().text().await.unwrap(),
            "Queues"
        );

        // Type, click, and wait for the script's text.
        let name = browser.find("#name").await.unwrap();
        assert_eq!(name.attr("value").await.unwrap().as_deref(), Some("draft"));
        assert_eq!(name.attr("data-none").await.unwrap(), None);
        name.clear().await.unwrap();
        name.send_keys("docket").await.unwrap();
        browser.find("#go").await.unwrap().click().await.unwrap();
        let status = browser
            .wait_until_text(".line", "hello docket", WITHIN)
            .await
            .unwrap();
        assert_eq!(status.attr("id").await.unwrap().as_deref(), Some("status"));

        // An element a script adds later.
        let late = browser.wait_for("#late", WITHIN).await.unwrap();
        assert_eq!(late.text().await.unwrap(), "arrived");

        // A script tag escaped into text is text: it shows, and opens no dialog.
        let escaped = browser.find("[data-kind=escaped]").await.unwrap();
        assert_eq!(escaped.text().await.unwrap(), "<script>alert(1)</script>");
        assert_eq!(browser.alert_text().await.unwrap(), None);
        assert_eq!(browser.find_all("script").await.unwrap().len(), 1);
        assert_eq!(browser.find_all(".line").await.unwrap().len(), 2);
        assert!(browser.find_all("#nothing").await.unwrap().is_empty());

        // Scripts, with an element for an argument.
        let sum = browser
            .execute(
                "return arguments[0] + arguments[1];",
                &[json!(40), json!(2)],
            )
            .await
            .unwrap();
        assert_eq!(sum, json!(42));
        let tag = browser
            .execute("return arguments[0].tagName;", &[escaped.as_arg()])
            .await
            .unwrap();
        assert_eq!(tag, json!("P"));

        // Errors name the command and the selector.
        let missing = browser.find("#missing").await.unwrap_err();
        assert_eq!(missing.webdriver_error(), Some("no such element"));
        let message = missing.to_string();
        assert!(
            message.contains("POST /element") && message.contains("#missing"),
            "{message}"
        );
        let timed_out = browser
            .wait_for("#never", Duration::from_millis(200))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            timed_out.contains("#never") && timed_out.contains(&base),
            "{timed_out}"
        );

        // The window, and a screenshot that is a PNG.
        browser.set_window_size(800, 600).await.unwrap();
        let width = browser
            .execute("return window.outerWidth;", &[])
            .await
            .unwrap();
        assert_eq!(width, json!(800));
        let shot = std::env::temp_dir().join(format!("{}.png", unique("docket-browser-shot")));
        browser.screenshot_png(&shot).await.unwrap();
        let png = std::fs::read(&shot).expect("read the screenshot");
        std::fs::remove_file(&shot).expect("remove the screenshot");
        assert!(
            png.starts_with(PNG_MAGIC),
            "not a PNG: {:?}",
            &png[..png.len().min(16)]
        );
        assert!(png.len() > 1000, "a {}-byte screenshot", png.len());

        // Nothing but loopback is reached: another host's name goes to the dead proxy.
        let away = browser.goto("http://docket.invalid/").await.unwrap_err();
        let away = away.to_string();
        assert!(
            away.contains("docket.invalid")
                && (away.contains("ERR_PROXY_CONNECTION_FAILED")
                    || away.contains("ERR_NAME_NOT_RESOLVED")),
            "{away}"
        );

        // A page that calls alert() does open a dialog.
        browser
            .goto(&format!("{base}/alert"))
            .await
            .expect("open the page with a dialog");
        assert_eq!(
            browser.alert_text().await.unwrap().as_deref(),
            Some("from the page")
        );
        browser.dismiss_alert().await.unwrap();
        assert_eq!(browser.alert_text().await.unwrap(), None);
    }

    #[tokio::test]
    async fn browser_is_dropped_with_its_driver_and_directory() {
        let browser = Browser::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let dir = browser.dir().to_owned();
        let port = browser.driver_port();
        let pid = browser.driver_pid();
        assert!(dir.exists());
        assert!(
            !processes_naming(&dir).is_empty(),
            "no Chromium runs with its profile in {}",
            dir.display()
        );
        drop(browser);
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "chromedriver {pid} is still there"
        );
        let left = processes_naming(&dir);
        assert!(left.is_empty(), "Chromium processes left: {left:?}");
        assert!(
            TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .is_err(),
            "chromedriver still answers on {port}"
        );
    }

    /// The ids of the processes whose command line names `dir`.
    fn processes_naming(dir: &std::path::Path) -> Vec<u32> {
        let needle = dir.display().to_string();
        std::fs::read_dir("/proc")
            .expect("list /proc")
            .filter_map(|entry| {
                let pid = entry.ok()?.file_name().to_str()?.parse::<u32>().ok()?;
                let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                String::from_utf8_lossy(&command_line)
                    .contains(&needle)
                    .then_some(pid)
            })
            .collect()
    }

    #[test]
    fn browser_missing_says_how_to_install_it() {
        let error = find_program("docket-no-such-driver", &["/nonexistent/chromedriver"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`docket-no-such-driver` not found")
                && error.contains("/nonexistent/chromedriver")
                && error.contains("`.ci/run`")
                && error.contains("apt-get install chromium chromium-driver"),
            "{error}"
        );
    }

    #[test]
    fn browser_client_reads_http_responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}  ";
        assert_eq!(
            parse_response(plain, false),
            Parsed::Done(200, b"{}  ".to_vec())
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", false),
            Parsed::Incomplete
        );
        assert!(matches!(
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", true),
            Parsed::Bad(_)
        ));
        let chunked = b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n\
                        3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false),
            Parsed::Done(404, b"abcde".to_vec())
        );
        assert_eq!(decode_chunked(b"3\r\nab"), None);
        assert_eq!(
            parse_response(b"HTTP/1.0 500 Oops\r\n\r\nbody", true),
            Parsed::Done(500, b"body".to_vec())
        );
        assert!(matches!(
            parse_response(b"SSH-2.0\r\n\r\n", false),
            Parsed::Bad(_)
        ));
    }

    #[test]
    fn browser_client_decodes_base64_and_encodes_paths() {
        assert_eq!(decode_base64("iVBORw0KGgo=").unwrap(), PNG_MAGIC);
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64(""), Some(Vec::new()));
        assert_eq!(decode_base64("a*b"), None);
        assert_eq!(path_segment("data-kind"), "data-kind");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
