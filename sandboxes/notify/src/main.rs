//! `notify-sandbox`: the SMS/push provider sandbox as a process (`make up`
//! starts it on port 8020). Settings: `NOTIFY_PORT`, `NOTIFY_HOST`.

use std::process::ExitCode;

use notify_sandbox::{Application, Settings, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    sandbox_kit::init_logging("NOTIFY_LOG_FORMAT");
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
