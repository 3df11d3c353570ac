//! The gRPC server on a Unix socket, as daprd's pluggable-component
//! discovery expects it: `<DAPR_COMPONENTS_SOCKETS_FOLDER>/<name>.sock`
//! serving the `OutputBinding` service plus gRPC server reflection (daprd
//! lists the services of every socket in the folder with reflection
//! v1alpha, and registers the component type `bindings.<name>`).

use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
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

/// The largest gRPC request (one `Invoke`: data and metadata) the server
/// decodes; tonic's default is 4 MiB.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

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
    /// `(dev, inode)` of the socket this process bound: on exit the path is
    /// removed only if it still names this socket.
    identity: (u64, u64),
}

/// `(dev, inode)`, without following a symlink.
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    let meta = std::fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

impl BoundSocket {
    /// [`Self::bind_with_mode`] with the mode the umask gives.
    pub fn bind(path: &Path) -> anyhow::Result<Self> {
        Self::bind_with_mode(path, None)
    }

    /// Creates the folder if needed and binds `path`, never taking it over
    /// from someone else:
    ///
    /// * a socket at `path` that refuses connections (`ECONNREFUSED`: left
    ///   by a process that died) is removed;
    /// * a socket that accepts a connection means another process serves
    ///   it: refused (`another process serves <path>`);
    /// * anything else at `path` (regular file, symlink, folder) is
    ///   refused and left alone.
    ///
    /// The socket is bound in a fresh private folder next to `path` (mode
    /// 700, random name starting with `.`; daprd's discovery skips
    /// folders), given `mode` there, and only then hard-linked to `path`
    /// (`link` fails if `path` exists, so a concurrent start is not
    /// overwritten either): no other process can connect before the mode
    /// is set.
    pub fn bind_with_mode(path: &Path, mode: Option<u32>) -> anyhow::Result<Self> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket folder {}", dir.display()))?;
        clear_stale(path)?;

        // Random, not the pid: processes in different containers sharing
        // the folder can have the same pid. As short as `smtp-mime.sock`
        // (a socket path has at most 107 bytes).
        let mut random = uuid::Uuid::new_v4().simple().to_string();
        random.truncate(11);
        let private = dir.join(format!(".{random}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .with_context(|| format!("cannot create {}", private.display()))?;
        let result = bind_privately(&private.join("s"), path, mode);
        if let Err(e) = std::fs::remove_dir_all(&private) {
            tracing::warn!(folder = %private.display(), error = %e, "cannot remove the temporary socket folder");
        }
        let (listener, identity) = result?;
        Ok(Self {
            listener,
            path: path.to_owned(),
            identity,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` completes, then stops taking calls, lets
    /// in-flight sends finish for up to `grace`, closes the SMTP sessions
    /// and removes the socket (only if the path still names the socket this
    /// process bound).
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            path,
            identity,
        } = self;
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
            .add_service(
                OutputBindingServer::new(binding.clone())
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
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
        remove_own_socket(&path, identity);
        tracing::info!("stopped");
        result
    }
}

/// Removes a stale socket at `path`; refuses anything else found there.
fn clear_stale(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => anyhow::bail!("another process serves {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot tell whether another process serves {}",
                    path.display()
                )
            });
        }
    }
    // Nobody listens: left by a process that died. Remove it only if it is
    // still the socket inspected above (another instance starting at the
    // same moment may have replaced it since).
    if identity(path).ok() == Some((meta.dev(), meta.ino())) {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(socket = %path.display(), "removed a stale socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot remove the stale socket {}", path.display()));
            }
        }
    }
    Ok(())
}

/// Binds `temporary` (in a private folder), applies `mode`, then links it
/// to `path` (fails if `path` exists).
fn bind_privately(
    temporary: &Path,
    path: &Path,
    mode: Option<u32>,
) -> anyhow::Result<(UnixListener, (u64, u64))> {
    let listener = UnixListener::bind(temporary)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    if let Some(mode) = mode {
        std::fs::set_permissions(temporary, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    let identity =
        identity(temporary).with_context(|| format!("cannot inspect {}", temporary.display()))?;
    match std::fs::hard_link(temporary, path) {
        Ok(()) => Ok((listener, identity)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            anyhow::bail!("another process serves {}", path.display())
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {}", path.display())),
    }
}

/// Removes the socket at `path` if it is still the one with `identity`:
/// another instance may have taken the path over since.
fn remove_own_socket(path: &Path, identity: (u64, u64)) {
    match self::identity(path) {
        Ok(found) if found == identity => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(socket = %path.display(), error = %e, "cannot remove the socket");
            }
        }
        Ok(_) => tracing::warn!(
            socket = %path.display(),
            "the socket path now belongs to another process; leaving it"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(socket = %path.display(), error = %e, "cannot inspect the socket"),
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
