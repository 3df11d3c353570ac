//! `psp-sandbox`: the payment service provider sandbox as a process
//! (`make up` starts it on port 8010). Settings: `PSP_*` variables, see the
//! crate's README.

use std::process::ExitCode;

use psp_sandbox::Application;

#[tokio::main]
async fn main() -> ExitCode {
    sandbox_kit::run_process("PSP_LOG_FORMAT", Application::build).await
}
