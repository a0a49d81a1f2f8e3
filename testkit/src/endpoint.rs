//! Where a test's server listens and how the testkit reaches it: a plain loopback port
//! (the default), a Unix socket only, or TLS only; and with or without a password.

use std::path::{Path, PathBuf};

/// PEM files of a TLS server: the authority clients trust, and the server's
/// certificate and key (which cluster nodes and replicas also present to each other).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate authority, PEM.
    pub ca: PathBuf,
    /// The server's certificate, PEM, valid for `127.0.0.1`.
    pub cert: PathBuf,
    /// The server certificate's private key, PEM.
    pub key: PathBuf,
}

/// What a server listens on.
#[derive(Debug, Clone, Default)]
pub(crate) enum Listener {
    /// A plain TCP port.
    #[default]
    Plain,
    /// `redis.sock` in the server's directory, and no TCP port.
    Unix,
    /// TLS on the port, and no plain TCP port. Clients need not present a certificate.
    Tls(TlsFiles),
}

/// How to reach one server: its listener, port, directory and password.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub listener: Listener,
    pub port: u16,
    pub dir: PathBuf,
    pub password: Option<String>,
}

impl Endpoint {
    /// The server's arguments that say where it listens (and its password).
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = match &self.listener {
            Listener::Plain => vec!["--port".into(), self.port.to_string()],
            Listener::Unix => vec![
                "--port".into(),
                "0".into(),
                "--unixsocket".into(),
                self.socket().display().to_string(),
                "--unixsocketperm".into(),
                "700".into(),
            ],
            Listener::Tls(files) => vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                self.port.to_string(),
                "--tls-cert-file".into(),
                files.cert.display().to_string(),
                "--tls-key-file".into(),
                files.key.display().to_string(),
                "--tls-ca-cert-file".into(),
                files.ca.display().to_string(),
                "--tls-auth-clients".into(),
                "optional".into(),
            ],
        };
        if let Some(password) = &self.password {
            args.extend(["--requirepass".into(), password.clone()]);
        }
        args
    }

    /// The Unix socket a [`Listener::Unix`] server listens on.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL of database 0, with the password: `redis://`, `unix://` or `rediss://`
    /// (whose authority a client must be told separately, see [`Endpoint::client`]).
    pub fn url(&self) -> String {
        let credentials = self
            .password
            .as_ref()
            .map(|password| format!(":{password}@"))
            .unwrap_or_default();
        match &self.listener {
            Listener::Plain => format!("redis://{credentials}127.0.0.1:{}/0", self.port),
            Listener::Tls(_) => format!("rediss://{credentials}127.0.0.1:{}/0", self.port),
            Listener::Unix => {
                let password = self
                    .password
                    .as_ref()
                    .map(|password| format!("&pass={password}"))
                    .unwrap_or_default();
                format!("unix://{}?db=0{password}", self.socket().display())
            }
        }
    }

    /// A client for the server, trusting its authority when it speaks TLS.
    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.listener {
            Listener::Tls(files) => redis::Client::build_with_tls(
                self.url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(read(&files.ca)?),
                },
            ),
            Listener::Plain | Listener::Unix => redis::Client::open(self.url()),
        }
    }
}

fn read(path: &Path) -> redis::RedisResult<Vec<u8>> {
    std::fs::read(path).map_err(Into::into)
}
