//! A stand-in for SMS and push providers, for local runs, tests and
//! benchmarks of `services/communication`. One process plays several
//! providers, chosen by the first path segment: `sms-primary`,
//! `sms-secondary`, `push`. Accepted messages are kept in memory and can be
//! listed; each provider's failure mode is set through the control API.
//! Contract: `contracts/openapi/notify-sandbox.yaml`.

mod api;
mod error;
mod message;
mod receipt;
mod settings;
mod store;

use axum::Router;
use axum::routing::{get, post};

pub use sandbox_kit::RunningSandbox;

pub use message::{
    BOUNCING_PUSH_RECIPIENT, BOUNCING_SMS_RECIPIENT, INVALID_PUSH_RECIPIENT, INVALID_SMS_RECIPIENT,
};
pub use receipt::{SIGNATURE_HEADER, sign as sign_receipt};
pub use settings::{FromVariables, Settings, SettingsError};

fn router(state: api::AppState) -> Router {
    Router::new()
        .route("/{provider}/messages", post(api::send).get(api::list))
        .route(
            "/__sandbox/{provider}/config",
            post(api::update_config).get(api::get_config),
        )
        .route("/__sandbox/stats", get(api::stats))
        .route("/__sandbox/receipts", get(api::receipts))
        .route("/__sandbox/reset", post(api::reset))
        .route("/healthz", get(sandbox_kit::healthz))
        .layer(axum::middleware::from_fn(sandbox_kit::log_request))
        .with_state(state)
}

/// A bound, not yet serving sandbox.
#[derive(Debug)]
pub struct Application(sandbox_kit::Server);

impl Application {
    /// Binds `settings.host:settings.port` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let server =
            sandbox_kit::Server::bind("notify", settings.host, settings.port, |stopping| {
                router(api::AppState::new(stopping, &settings.callback_secret))
            })
            .await?;
        Ok(Self(server))
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Serves in a background task of the current runtime (in-process use);
    /// delayed answers are released at once when it stops.
    pub fn spawn(self) -> RunningSandbox {
        self.0.spawn()
    }
}

impl From<Application> for sandbox_kit::Server {
    fn from(app: Application) -> Self {
        app.0
    }
}
