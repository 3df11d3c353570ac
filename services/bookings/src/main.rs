use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    bookings::startup::main(env!("CARGO_MANIFEST_DIR")).await
}
