//! `notify-sandbox`: the SMS/push provider sandbox as a process (`make up`
//! starts it on port 8020). Settings: `NOTIFY_PORT`, `NOTIFY_HOST`.

use std::process::ExitCode;

use notify_sandbox::Application;

#[tokio::main]
async fn main() -> ExitCode {
    sandbox_kit::run_process("NOTIFY_LOG_FORMAT", Application::build).await
}
