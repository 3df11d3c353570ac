//! The gRPC server on a Unix socket, as daprd's pluggable-component
//! discovery expects it: `<DAPR_COMPONENTS_SOCKETS_FOLDER>/<name>.sock`
//! serving the `OutputBinding` service plus gRPC server reflection (daprd
//! lists the services of every socket in the folder with reflection
//! v1alpha, and registers the component type `bindings.<name>`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;

use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::output_binding_server::OutputBindingServer;
use crate::service::SmtpMimeBinding;

/// The socket's name without `.sock`: the component type is
/// `bindings.smtp-mime`.
pub const DEFAULT_SOCKET_NAME: &str = "smtp-mime";
/// daprd's default socket folder.
pub const DEFAULT_SOCKETS_FOLDER: &str = "/tmp/dapr-components-sockets";
/// How long in-flight sends may take to finish after a shutdown request.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

const OUTPUT_BINDING: &str =
    <OutputBindingServer<SmtpMimeBinding> as tonic::server::NamedService>::NAME;

/// `<dir>/<name>.sock`.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// A bound, not yet serving, component socket.
#[derive(Debug)]
pub struct BoundSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl BoundSocket {
    /// Creates the folder if needed, removes a stale socket left by an
    /// earlier run, and binds.
    pub fn bind(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the socket folder {}", dir.display()))?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                anyhow::bail!("{} is a directory, not a socket", path.display())
            }
            Ok(_) => std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the stale socket {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        }
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        Ok(Self {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` completes, then stops taking calls, lets
    /// in-flight sends finish for up to `grace`, closes the SMTP sessions
    /// and removes the socket.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let Self { listener, path } = self;
        let binding = SmtpMimeBinding::new();
        // Only OutputBinding: bindings.proto also defines InputBinding, and
        // daprd would initialise an advertised InputBinding too.
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .with_service_name(OUTPUT_BINDING)
            .build_v1alpha()
            .context("gRPC reflection (v1alpha)")?;
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .with_service_name(OUTPUT_BINDING)
            .build_v1()
            .context("gRPC reflection (v1)")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(OutputBindingServer::new(binding.clone()))
            .add_service(reflection_v1alpha)
            .add_service(reflection_v1)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                let _ = stopped.await;
            });
        tracing::info!(socket = %path.display(), "serving the smtp-mime binding");

        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result.context("the gRPC server failed"),
            () = shutdown => {
                tracing::info!(grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX), "shutting down: finishing in-flight sends");
                let _ = stop.send(());
                match tokio::time::timeout(grace, &mut server).await {
                    Ok(result) => result.context("the gRPC server failed"),
                    Err(_) => {
                        tracing::warn!("in-flight sends did not finish in time; stopping anyway");
                        Ok(())
                    }
                }
            }
        };
        binding.shutdown().await;
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove the socket");
        }
        tracing::info!("stopped");
        result
    }
}

/// Serves the binding on `socket_path` until `shutdown` completes (the
/// binary's entry point: `shutdown` is SIGTERM/SIGINT).
pub async fn serve(
    socket_path: &Path,
    shutdown: impl Future<Output = ()> + Send,
    grace: Duration,
) -> anyhow::Result<()> {
    BoundSocket::bind(socket_path)?.serve(shutdown, grace).await
}

/// The binding served in-process (tests): `smtp-mime.sock` in a folder,
/// listening when [`RunningBinding::spawn`] returns; stopped by
/// [`RunningBinding::shutdown`] or on drop.
#[derive(Debug)]
pub struct RunningBinding {
    socket: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl RunningBinding {
    /// Serves `<socket_dir>/smtp-mime.sock` (component type `bindings.smtp-mime`).
    pub async fn spawn(socket_dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_named(socket_dir, DEFAULT_SOCKET_NAME).await
    }

    /// Serves `<socket_dir>/<name>.sock` (component type `bindings.<name>`).
    pub async fn spawn_named(socket_dir: &Path, name: &str) -> anyhow::Result<Self> {
        let bound = BoundSocket::bind(&socket_path(socket_dir, name))?;
        let socket = bound.path().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(
            async {
                let _ = stopped.await;
            },
            DEFAULT_SHUTDOWN_GRACE,
        ));
        Ok(Self {
            socket,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Stops as on SIGTERM and waits until the socket is gone.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for RunningBinding {
    fn drop(&mut self) {
        // The task finishes the shutdown (and removes the socket) on its own.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
