//! The one way services talk to their Dapr sidecar.
//!
//! Calls go over the sidecar's gRPC API with the generated client of the
//! official `dapr` crate (one multiplexed HTTP/2 connection, cheap to clone),
//! except where only the HTTP API has the semantics a caller needs: health
//! probes (Dapr exposes them only there), state transactions (values kept as
//! JSON; see `state`) and service invocation (the target's HTTP answer as it
//! is; see `invoke`). Every call carries the sidecar's API token, added in
//! one place (`token`). Retries, timeouts and circuit breaking are *not*
//! done here: they are the sidecar's job, declared in
//! `dapr-config/resiliency/`; [`Sidecar::with_timeout`] only bounds how long
//! the caller waits.

mod binding;
mod client;
mod cloudevent;
mod error;
mod invoke;
mod jobs;
mod pubsub;
mod state;
mod token;

#[cfg(test)]
mod tests;

pub use binding::{BindingError, BindingResponse};
pub use client::Sidecar;
pub use cloudevent::{OutgoingEvent, format_time, is_traceparent};
pub use error::SidecarError;
pub use invoke::{InvokeError, InvokeRequest, InvokeResponse, SidecarErrorBody};
pub use pubsub::BulkEntry;
pub use state::{OutboxEvent, StateEntry, StateOperation, WriteMode};
pub use token::sidecar_http_headers;
