use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    communication::startup::main(env!("CARGO_MANIFEST_DIR")).await
}
