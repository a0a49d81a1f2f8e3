//! Names and ports no one else uses: a unique name per call, a free loopback port.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A name no other call in this process (nor, by the process id, in another process)
/// returns: `{prefix}-{pid}-{n}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nobody listened on a moment ago (the system's choice of a free
/// one); whoever binds it next gets it.
///
/// # Panics
/// When the system has no free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("find a free loopback port")
}
