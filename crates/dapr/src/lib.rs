//! The one way services talk to their Dapr sidecar.
//!
//! Calls go over the sidecar's gRPC API with the generated client of the
//! official `dapr` crate (one multiplexed HTTP/2 connection, cheap to clone);
//! health probes use the sidecar's HTTP API because Dapr exposes them only
//! there. Retries, timeouts and circuit breaking are *not* done here: they are
//! the sidecar's job, declared in `dapr-config/resiliency/`.

mod client;
mod error;
mod state;

pub use client::Sidecar;
pub use error::SidecarError;
pub use state::{OutboxEvent, StateEntry, StateOperation};
