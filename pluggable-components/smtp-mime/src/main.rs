//! The `smtp-mime-binding` process: serves `bindings.smtp-mime` on
//! `$DAPR_COMPONENTS_SOCKETS_FOLDER/$SMTP_MIME_SOCKET_NAME.sock` until
//! SIGTERM or SIGINT.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    smtp_mime_binding::process::main().await
}
