//! The HTTP scaffolding every service shares, so that a service's own crate
//! holds only its routes and domain code:
//!
//! * [`app_token`]: the Dapr-facing routes accept only this service's sidecar.
//! * [`readiness`]: `/healthz` (the process is alive) and `/readyz` (every
//!   dependency, the Dapr sidecar included, answers), plus `/metrics`.
//! * [`layers`]: request id, tracing span, HTTP metrics, request timeout and
//!   problem+json fallbacks around a service's router.
//! * [`shutdown`]: SIGTERM/SIGINT, then drain in-flight requests.
//! * [`background`]: the service's background loops, stopped after the drain.
//! * [`database`]: which database errors mean "unavailable, try again".
//! * [`openapi`]: the service's contract served at `GET /openapi.yaml`, and
//!   compared with its router.

pub mod app_token;
pub mod auth;
pub mod background;
mod bootstrap;
pub mod checks;
pub mod database;
pub mod layers;
pub mod openapi;
pub mod readiness;
pub mod shutdown;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use platform_settings::ServerSettings;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use background::{BackgroundTasks, StopSignal};
pub use bootstrap::{StartupError, run_service};
pub use readiness::{Check, CheckFuture, Failure, FailureStatus, Readiness};

/// A bound, not yet serving HTTP server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
    background: BackgroundTasks,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port, for tests). After a shutdown
    /// signal, in-flight requests get `shutdown_grace` to finish.
    pub async fn bind(
        addr: SocketAddr,
        router: Router,
        shutdown_grace: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router,
            shutdown_grace,
            background: BackgroundTasks::new(),
        })
    }

    /// Binds a service the way every service is served: its `routes`
    /// inside the shared layers ([`layers::wrap`]: request id, tracing,
    /// metrics, timeout, problem+json fallbacks), `/healthz`, `/readyz` and
    /// `/metrics` beside them, and its background tasks.
    pub async fn bind_service(
        settings: &ServerSettings,
        routes: Router,
        readiness: Readiness,
        metrics: PrometheusHandle,
        background: BackgroundTasks,
    ) -> std::io::Result<Self> {
        let router =
            layers::wrap(routes, settings.request_timeout()).merge(readiness.routes(metrics));
        let addr = SocketAddr::new(settings.host, settings.port);
        Ok(Self::bind(addr, router, settings.shutdown_grace())
            .await?
            .with_background(background))
    }

    /// The service's background loops: they run while the server serves and
    /// are stopped (with the same grace) after in-flight requests drained.
    #[must_use]
    pub fn with_background(mut self, background: BackgroundTasks) -> Self {
        self.background = background;
        self
    }

    /// The router as served (the shared layers included), for checks such
    /// as [`openapi::compare`] that need it without a listener.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` resolves, then stops accepting, lets in-flight
    /// requests finish (bounded by the request timeout and the shutdown
    /// grace) and returns. The binary passes [`shutdown::terminate_signal`];
    /// tests pass their own future, so that a test process keeps the
    /// default signal handling (Ctrl-C still kills it).
    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(server.address = %addr, "listening");
        let (signalled_tx, signalled_rx) = oneshot::channel::<()>();
        let serve = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            stop.await;
            let _ = signalled_tx.send(());
        });
        let grace = self.shutdown_grace;
        let drained = async move {
            tokio::select! {
                result = serve => result,
                () = async move {
                    if signalled_rx.await.is_ok() {
                        tokio::time::sleep(grace).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                } => {
                    tracing::warn!(shutdown.grace_ms = grace.as_millis(), "in-flight requests outlived the shutdown grace; exiting anyway");
                    Ok(())
                }
            }
        };
        tokio::pin!(drained);
        let mut background = self.background;
        let result = loop {
            tokio::select! {
                result = &mut drained => break result,
                // Logged where it is detected; the others keep running.
                _early = background.first_early_exit() => {}
            }
        };
        background.stop(grace).await;
        result?;
        tracing::info!("server stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use axum::Router;
    use tokio::sync::oneshot;

    use super::{BackgroundTasks, Server};

    async fn server(background: BackgroundTasks) -> Server {
        Server::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            Router::new(),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .with_background(background)
    }

    #[tokio::test]
    async fn stopping_the_server_stops_its_background_tasks() {
        let (observed_tx, mut observed_rx) = oneshot::channel::<()>();
        let mut background = BackgroundTasks::new();
        background.spawn("watcher", |mut stop| async move {
            stop.stopped().await;
            let _ = observed_tx.send(());
        });
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let running = tokio::spawn(server(background).await.run_until_stopped(async {
            let _ = stop_rx.await;
        }));

        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            observed_rx.try_recv().is_err(),
            "the task runs while the server serves"
        );
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
        assert_eq!(
            observed_rx.try_recv(),
            Ok(()),
            "the task saw the stop signal before the server returned"
        );
    }

    #[tokio::test]
    async fn dropping_a_running_server_aborts_its_background_tasks() {
        let (dropped_tx, dropped_rx) = oneshot::channel::<()>();
        let mut background = BackgroundTasks::new();
        background.spawn("holder", |_stop| async move {
            // Dropped with the task: the receiver then sees the channel close.
            let _held = dropped_tx;
            std::future::pending::<()>().await;
        });
        let running = tokio::spawn(
            server(background)
                .await
                .run_until_stopped(std::future::pending()),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        running.abort();
        let closed = tokio::time::timeout(Duration::from_secs(5), dropped_rx).await;
        assert!(matches!(closed, Ok(Err(_))), "the task was aborted");
    }
}
