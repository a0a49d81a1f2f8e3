//! A throwaway `redis-server` for tests: loopback only, no persistence, on a free port,
//! killed (by its pid) when dropped.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` this test started.
pub(super) struct TestServer {
    child: Child,
    port: u16,
}

impl TestServer {
    /// Starts a server on a free loopback port.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not come up within 10 s.
    pub(super) fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("no free loopback port")
            .port();
        Self {
            child: spawn(port),
            port,
        }
    }

    /// The URL of the server.
    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server and starts an empty one on the same port (a restart without
    /// persistence).
    pub(super) fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port);
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(port: u16) -> Child {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .arg("--dir")
        .arg(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start `redis-server`; install it (apt-get install redis-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("`redis-server` on port {port} exited with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "`redis-server` did not listen on port {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}
