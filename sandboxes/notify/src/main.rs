//! `notify-sandbox`: the SMS/push provider sandbox as a process (`make up`
//! starts it on port 8020). Settings: `NOTIFY_PORT`, `NOTIFY_HOST`.

use std::process::ExitCode;

use notify_sandbox::{Application, Settings, shutdown_signal};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal; log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if std::env::var("NOTIFY_LOG_FORMAT").is_ok_and(|f| f == "json") {
        subscriber.json().flatten_event(true).init();
    } else {
        subscriber.compact().init();
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            tracing::error!(%error, "invalid settings");
            return ExitCode::FAILURE;
        }
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            tracing::error!(%error, "cannot bind");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
