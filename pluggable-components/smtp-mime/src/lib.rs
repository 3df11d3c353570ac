//! `bindings.smtp-mime`: a Dapr pluggable output binding that sends email as
//! proper MIME (text and/or HTML, caller-set headers such as `Message-ID`)
//! over pooled SMTP sessions, and reports the server's reply instead of
//! failing on it. The contract is `contracts/bindings/smtp-mime.md`.
//!
//! daprd talks to it over gRPC on a Unix socket (Dapr's pluggable component
//! protocol, `contracts/proto`). [`serve`] is the process's entry point;
//! tests start it in-process with [`RunningBinding::spawn`] before daprd.

mod address;
pub mod config;
pub mod email;
pub mod mailer;
pub mod process;
pub mod server;
pub mod service;

/// Code generated from the vendored `dapr/proto/components/v1` protocol.
pub mod proto {
    #![expect(clippy::allow_attributes, reason = "generated code carries #[allow]s")]
    tonic::include_proto!("dapr.proto.components.v1");

    /// The protocol's encoded descriptors, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/components_descriptor.bin"));
}

pub use server::{
    BoundSocket, DEFAULT_SHUTDOWN_GRACE, DEFAULT_SOCKET_NAME, DEFAULT_SOCKETS_FOLDER,
    RunningBinding, serve, socket_path,
};
pub use service::SmtpMimeBinding;
