//! A stand-in for an external payment service provider (Stripe/Adyen-like),
//! for local runs, tests and benchmarks of `services/payments`.
//!
//! The wire contract is `contracts/openapi/psp-sandbox.yaml`. State lives in
//! memory. Outcomes are chosen by test card numbers; latency, failures and
//! timeouts can be injected through the control API (`/__sandbox`); state
//! changes are sent as signed webhooks ([`webhook`]).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let app = psp_sandbox::Application::build(psp_sandbox::Settings::ephemeral(None)).await?;
//! let port = app.port();
//! let running = app.spawn();
//! // ... talk to http://127.0.0.1:{port} ...
//! running.stop().await;
//! # Ok(()) }
//! ```

mod api;
mod control;
mod error;
mod model;
mod settings;
mod state;
mod store;
pub mod webhook;

use axum::Router;
use axum::routing::{get, post};

pub use sandbox_kit::RunningSandbox;

pub use settings::{DEFAULT_WEBHOOK_SECRET, FromVariables, Settings, SettingsError};
use state::AppState;

/// The routes, testable in-process.
fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/v1/authorizations",
            post(api::create_authorization).get(api::list_authorizations),
        )
        .route("/v1/authorizations/{id}", get(api::get_authorization))
        .route("/v1/authorizations/{id}/capture", post(api::capture))
        .route("/v1/authorizations/{id}/void", post(api::void))
        .route(
            "/v1/refunds",
            post(api::create_refund).get(api::list_refunds),
        )
        .route("/v1/refunds/{id}", get(api::get_refund))
        .route(
            "/__sandbox/config",
            post(control::update_config).get(control::get_config),
        )
        .route("/__sandbox/stats", get(control::stats))
        .route("/__sandbox/failures", get(control::failures))
        .route("/__sandbox/reset", post(control::reset))
        .route("/__sandbox/webhooks", get(control::list_webhooks))
        .route(
            "/__sandbox/webhooks/{event_id}/resend",
            post(control::resend_webhook),
        )
        .route("/__sandbox/webhooks/emit", post(control::emit_webhook))
        .route("/healthz", get(sandbox_kit::healthz))
        .layer(axum::middleware::from_fn(sandbox_kit::log_request))
        .with_state(state)
}

/// A bound, not yet serving sandbox.
#[derive(Debug)]
pub struct Application {
    server: sandbox_kit::Server,
    webhook_secret: String,
}

impl Application {
    /// Binds `settings.host:settings.port` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let webhook_secret = settings.webhook_secret.clone();
        tracing::info!(
            psp.webhook_url = settings.webhook_url.as_deref().unwrap_or("-"),
            "psp sandbox webhooks"
        );
        let server = sandbox_kit::Server::bind("psp", settings.host, settings.port, |stopping| {
            router(AppState::new(settings, stopping))
        })
        .await?;
        Ok(Self {
            server,
            webhook_secret,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The HMAC key of the webhook signatures.
    pub fn webhook_secret(&self) -> String {
        self.webhook_secret.clone()
    }

    /// Serves in a background task of the current runtime (in-process use);
    /// held-back (slow) answers are released at once when it stops.
    pub fn spawn(self) -> RunningSandbox {
        self.server.spawn()
    }
}

impl From<Application> for sandbox_kit::Server {
    fn from(app: Application) -> Self {
        app.server
    }
}
