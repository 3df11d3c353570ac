//! The component socket: never taken over from a live instance or from
//! something that is not a socket, stale sockets replaced, only the own
//! socket removed on exit; the mode set before the socket appears; requests
//! above tonic's default 4 MiB decoded.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use platform_test_support::{SmtpCatcher, TestEnv};
use smtp_mime_binding::proto::output_binding_client::OutputBindingClient;
use smtp_mime_binding::proto::{InvokeRequest, MetadataRequest, OutputBindingInitRequest};
use smtp_mime_binding::{BoundSocket, RunningBinding, socket_path};

/// A call for component instance `big` (daprd names the component in
/// this header).
fn with_instance<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-component-instance",
        tonic::metadata::MetadataValue::from_static("big"),
    );
    request
}

/// Whether a process accepts connections on `path`.
fn serves(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The names in `dir` (no temporary folders left behind).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_second_instance_is_refused_while_the_first_serves() {
    let dir = tempfile::tempdir().unwrap();
    let first = RunningBinding::spawn(dir.path()).await.unwrap();
    let socket = first.socket_path().to_owned();
    assert!(serves(&socket));

    let error = RunningBinding::spawn(dir.path()).await.unwrap_err();

    assert_eq!(
        format!("{error:#}"),
        format!("another process serves {}", socket.display())
    );
    assert!(serves(&socket), "the first instance's socket survives");
    assert_eq!(entries(dir.path()), ["smtp-mime.sock"]);
    first.shutdown().await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn exit_leaves_a_socket_another_instance_bound_since() {
    let dir = tempfile::tempdir().unwrap();
    let first = RunningBinding::spawn(dir.path()).await.unwrap();
    let socket = first.socket_path().to_owned();
    // Someone removes the path (e.g. an operator's script) and a second
    // instance starts while the first still runs.
    std::fs::remove_file(&socket).unwrap();
    let second = RunningBinding::spawn(dir.path()).await.unwrap();

    first.shutdown().await.unwrap();

    assert!(serves(&socket), "the second instance's socket survives");
    second.shutdown().await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_path(dir.path(), "smtp-mime");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(
        is_socket(&socket) && !serves(&socket),
        "stale: nobody listens"
    );

    let binding = RunningBinding::spawn(dir.path()).await.unwrap();

    assert!(serves(&socket));
    binding.shutdown().await.unwrap();
    assert!(!socket.exists());
}

#[tokio::test]
async fn what_is_not_a_socket_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_path(dir.path(), "smtp-mime");

    std::fs::write(&socket, "not mine").unwrap();
    let error = RunningBinding::spawn(dir.path()).await.unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        format!(
            "{} exists and is not a socket; refusing to replace it",
            socket.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "not mine");
    std::fs::remove_file(&socket).unwrap();

    // A symlink, even to a live socket, is not taken over either.
    let elsewhere = tempfile::tempdir().unwrap();
    let other = RunningBinding::spawn(elsewhere.path()).await.unwrap();
    std::os::unix::fs::symlink(other.socket_path(), &socket).unwrap();
    let error = RunningBinding::spawn(dir.path()).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("is not a socket"),
        "{error:#}"
    );
    assert!(std::fs::symlink_metadata(&socket).unwrap().is_symlink());
    assert!(serves(other.socket_path()));
    std::fs::remove_file(&socket).unwrap();
    other.shutdown().await.unwrap();

    std::fs::create_dir(&socket).unwrap();
    let error = RunningBinding::spawn(dir.path()).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("is not a socket"),
        "{error:#}"
    );
    assert!(socket.is_dir());
}

#[tokio::test]
async fn the_mode_is_set_before_the_socket_appears() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o660] {
        let socket = socket_path(dir.path(), &format!("mode-{mode:o}"));
        let bound = BoundSocket::bind_with_mode(&socket, Some(mode)).unwrap();
        let found = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(found, mode, "{found:o}");
        assert!(serves(&socket));
        drop(bound);
    }
    // Only the sockets: the private folders they were bound in are gone.
    assert_eq!(entries(dir.path()), ["mode-600.sock", "mode-660.sock"]);
}

#[tokio::test]
async fn a_request_above_four_mib_is_decoded_and_sent() {
    let env = TestEnv::start().await.unwrap();
    let catcher = SmtpCatcher::start(env.dir()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binding = RunningBinding::spawn(dir.path()).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "unix://{}",
        binding.socket_path().display()
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let mut client = OutputBindingClient::new(channel);
    let port = catcher.smtp_port().to_string();
    let properties: HashMap<String, String> = [
        ("host", "127.0.0.1"),
        ("port", port.as_str()),
        ("tls", "none"),
        ("emailFrom", "no-reply@lisasports.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    client
        .init(with_instance(OutputBindingInitRequest {
            metadata: Some(MetadataRequest { properties }),
        }))
        .await
        .unwrap();

    // 6 MiB of text, 64-character lines.
    let text = format!("{}\n", "x".repeat(63)).repeat(6 * 1024 * 1024 / 64);
    let data = serde_json::to_vec(&serde_json::json!({ "text": text })).unwrap();
    assert!(data.len() > 6 * 1024 * 1024);
    let answer = client
        .invoke(with_instance(InvokeRequest {
            data,
            metadata: HashMap::from([("emailTo".to_owned(), "big@example.test".to_owned())]),
            operation: "create".to_owned(),
        }))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        answer.metadata["outcome"], "accepted",
        "{:?}",
        answer.metadata
    );
    let mail = crate::helpers::only_message(&catcher, "big@example.test").await;
    assert_eq!(
        crate::helpers::body(&mail, "text")
            .replace("\r\n", "\n")
            .len(),
        text.trim_end_matches('\n').len()
    );
    binding.shutdown().await.unwrap();
}
