//! Free TCP ports for the processes a test starts (daprd, redis-server).
//!
//! Ports are handed out from a range below the kernel's ephemeral range
//! (32768–60999 on Linux), so an outgoing connection of some other test can
//! never be given a port that a sidecar is about to listen on, and a process
//! never hands out the same port twice. Each candidate is checked by binding
//! it on every interface and on loopback (daprd's internal gRPC server listens
//! on all interfaces). Different processes start at different offsets, so two
//! test binaries running at once rarely meet; if they do, the loser fails
//! loudly at bind time rather than misbehave.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// First port of the range; above every fixed port the platform uses.
const FIRST: u32 = 20_000;
/// One past the last port of the range; the kernel's ephemeral range starts here.
const END: u32 = 32_768;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port that is free now and that this process has not handed out before.
pub fn free_port() -> std::io::Result<u16> {
    let span = END - FIRST;
    // Start each process at its own place in the range.
    let _ = NEXT.compare_exchange(
        0,
        1 + (std::process::id().wrapping_mul(7_919) % span),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let Ok(port) = u16::try_from(FIRST + offset) else {
            continue;
        };
        if bindable(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port between {FIRST} and {END}"),
    ))
}

fn bindable(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ports_are_never_handed_out_twice_and_stay_below_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().expect("port")).collect();
        let unique: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(
            ports
                .iter()
                .all(|p| u32::from(*p) >= FIRST && u32::from(*p) < END)
        );
    }

    #[test]
    fn a_port_in_use_is_not_bindable() {
        let port = free_port().expect("port");
        let held = TcpListener::bind(("127.0.0.1", port)).expect("bind");
        assert!(!bindable(port));
        drop(held);
        assert!(bindable(port));
    }
}
