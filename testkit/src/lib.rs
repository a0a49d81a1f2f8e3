//! docket's test infrastructure, shared by its unit tests, the end-to-end suite, the
//! bench and the chaos bed: one `redis-server` launcher ([`RedisServer`], a six-node
//! [`Cluster`], and a [`SentinelBed`] of a master, replicas and Sentinels to fail over),
//! free loopback ports, unique names, process signals, and the waits that stand in for
//! sleeps ([`wait_for`], [`eventually`], [`LogWatch`]). For end-to-end tests of a web
//! page, a headless Chromium driven over `WebDriver` by a `chromedriver` on a loopback
//! port ([`Browser`], its [`Element`]s): Debian's `chromium` and `chromium-driver`, which
//! `.ci/run` installs.
//!
//! It depends on no part of docket, so docket's own unit tests can use it.
//!
//! ```no_run
//! use docket_testkit::RedisServer;
//!
//! let mut server = RedisServer::start();
//! let url = server.url();
//! // ... connect to `url` ...
//! server.restart(); // an empty server on the same port
//! ```

mod browser;
mod cluster;
mod endpoint;
mod names;
mod process;
mod sentinel;
mod server;
mod wait;

pub use browser::{Browser, BrowserError, Element};
pub use cluster::Cluster;
pub use endpoint::TlsFiles;
pub use names::{free_port, unique};
pub use process::signal;
pub use sentinel::{Failover, SentinelBed, SentinelBedBuilder};
pub use server::{Builder, RedisServer, StartError, installed_server, parse_info};
pub use wait::{Deadline, LogWatch, TimedOut, eventually, try_wait_for, wait_for};
