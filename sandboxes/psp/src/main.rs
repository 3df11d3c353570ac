//! `psp-sandbox`: the payment service provider sandbox as a process
//! (`make up` starts it on port 8010). Settings: `PSP_*` variables, see the
//! crate's README.

use std::process::ExitCode;

use psp_sandbox::{Application, Settings, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    sandbox_kit::init_logging("PSP_LOG_FORMAT");
    sandbox_kit::exit_code(
        async {
            let settings = Settings::from_env().map_err(|e| format!("invalid settings: {e}"))?;
            let app = Application::build(settings)
                .await
                .map_err(|e| format!("cannot bind: {e}"))?;
            app.run_until_stopped(shutdown_signal())
                .await
                .map_err(|e| format!("server failed: {e}"))
        }
        .await,
    )
}
