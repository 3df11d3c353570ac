use std::time::Duration;

use platform_test_support::TestEnv;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::helpers::{COMPONENT, TestBinding, start_sidecar};

#[tokio::test]
async fn shutdown_removes_the_socket_and_later_calls_fail() {
    let mut t = TestBinding::start().await;
    let binding = t.binding.take().unwrap();
    let socket = binding.socket_path().to_owned();
    assert!(socket.exists());

    binding.shutdown().await.unwrap();

    assert!(!socket.exists());
    let answer = t
        .send(json!({"text": "x"}), json!({"emailTo": "ada@example.test"}))
        .await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert_eq!(t.catcher.count().await.unwrap(), 0);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_send_finish() {
    let env = TestEnv::start().await.unwrap();
    let smtp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = smtp.local_addr().unwrap().port().to_string();
    let (data_received, in_flight) = oneshot::channel();
    let (release, released) = oneshot::channel();
    tokio::spawn(held_smtp_server(smtp, data_received, released));
    let (binding, daprd, _app) = start_sidecar(
        &env,
        &[
            ("host", "127.0.0.1"),
            ("port", &port),
            ("tls", "none"),
            ("emailFrom", "no-reply@lisasports.test"),
        ],
    )
    .await
    .unwrap();
    let url = format!("{}/v1.0/bindings/{COMPONENT}", daprd.http_base());
    let client = daprd.api_client().clone();
    let send = tokio::spawn(async move {
        client
            .post(url)
            .json(&json!({"operation": "create", "data": {"text": "x"},
                          "metadata": {"emailTo": "ada@example.test"}}))
            .send()
            .await
            .unwrap()
    });
    in_flight.await.unwrap();

    let socket = binding.socket_path().to_owned();
    let stopping = tokio::spawn(binding.shutdown());
    // Let the shutdown begin before the server answers the transaction.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown must wait for the send in flight"
    );
    release.send(()).unwrap();
    let answer = send.await.unwrap();
    stopping.await.unwrap().unwrap();

    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["metadata.outcome"], "accepted");
    assert_eq!(answer.headers()["metadata.smtpMessage"], "queued as held-1");
    assert!(!socket.exists());
}

/// A one-connection SMTP server that holds its reply to the message until
/// `release`, after telling `data_received`.
#[expect(clippy::unwrap_used, reason = "a broken test server fails the test")]
async fn held_smtp_server(
    listener: TcpListener,
    data_received: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
) {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut data_received = Some(data_received);
    let mut release = Some(release);
    write.write_all(b"220 held ESMTP\r\n").await.unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        let command = line.to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-held\r\n250 8BITMIME\r\n"
        } else if command.starts_with("DATA") {
            write.write_all(b"354 go ahead\r\n").await.unwrap();
            while let Ok(Some(content)) = lines.next_line().await {
                if content == "." {
                    break;
                }
            }
            if let Some(tell) = data_received.take() {
                let _ = tell.send(());
            }
            if let Some(wait) = release.take() {
                let _ = wait.await;
            }
            b"250 queued as held-1\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await.unwrap();
    }
}
