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

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use sandbox_kit::{RunningSandbox, shutdown_signal};

pub use message::{
    BOUNCING_PUSH_RECIPIENT, BOUNCING_SMS_RECIPIENT, INVALID_PUSH_RECIPIENT, INVALID_SMS_RECIPIENT,
};
pub use receipt::{SIGNATURE_HEADER, sign as sign_receipt};
pub use settings::{Settings, SettingsError};

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
pub struct Application {
    listener: TcpListener,
    stop: watch::Sender<bool>,
    state: api::AppState,
}

impl Application {
    /// Binds `settings.host:settings.port` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(settings.host, settings.port)).await?;
        tracing::info!(notify.address = %listener.local_addr()?, "notify sandbox listening");
        let (stop, stopping) = watch::channel(false);
        Ok(Self {
            listener,
            stop,
            state: api::AppState::new(stopping, &settings.callback_secret),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests
    /// finish (delayed answers are released at once).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        sandbox_kit::serve(
            self.listener,
            router(self.state),
            shutdown,
            self.stop,
            "notify",
        )
        .await
    }

    /// Serves in a background task of the current runtime (in-process use).
    pub fn spawn(self) -> RunningSandbox {
        RunningSandbox::spawn(|stop| self.run_until_stopped(stop))
    }
}
