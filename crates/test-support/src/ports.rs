//! Free TCP ports on loopback.

use std::net::TcpListener;

/// A port that was free a moment ago. Binding port 0 and releasing it leaves
/// a small window in which another process may take it; tests that lose the
/// race fail loudly at bind time rather than misbehave.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
