//! A send whose caller gives up (daprd's Resiliency timeout cancels the
//! gRPC call) must not go out anyway: the caller retries, and that would be
//! a second mail. The catcher answers at once, so these tests talk to a
//! small SMTP peer of their own whose replies can be held back — the one
//! failure mode the catcher cannot play. The binding is used as a library
//! (`Mailer`), the level where the cancellation happens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::Message;
use smtp_mime_binding::config::ComponentConfig;
use smtp_mime_binding::mailer::Mailer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// An SMTP server that holds its reply to `DATA` and to the end of the
/// content for the given times, and counts the mails it accepted.
struct SlowServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl SlowServer {
    async fn start(hold_data: Duration, hold_content: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 slow ESMTP\r\n").await.ok();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 slow\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
                            "DATA" => {
                                tokio::time::sleep(hold_data).await;
                                write.write_all(b"354 go ahead\r\n").await.ok();
                                while let Ok(Some(line)) = lines.next_line().await {
                                    if line == "." {
                                        break;
                                    }
                                }
                                tokio::time::sleep(hold_content).await;
                                counter.fetch_add(1, Ordering::SeqCst);
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                return;
                            }
                            _ => b"500 what\r\n",
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn mailer(port: u16) -> Mailer {
    let metadata: HashMap<String, String> = [
        ("host", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("tls", "none".to_owned()),
        ("poolSize", "1".to_owned()),
        ("timeoutSeconds", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Mailer::new(&ComponentConfig::from_metadata(&metadata).unwrap()).unwrap()
}

fn mail(to: &str) -> Message {
    Message::builder()
        .from("no-reply@lisasports.test".parse().unwrap())
        .to(to.parse().unwrap())
        .subject("cancellation")
        .body("body".to_owned())
        .unwrap()
}

async fn eventually_settled(server: &SlowServer, wait: Duration) -> usize {
    tokio::time::sleep(wait).await;
    server.accepted()
}

#[tokio::test]
async fn a_call_cancelled_while_waiting_for_a_session_sends_nothing() {
    let server = SlowServer::start(Duration::ZERO, Duration::from_millis(800)).await;
    let mailer = Arc::new(mailer(server.port));
    // poolSize 1: the first send holds the only session for 800 ms.
    let first = tokio::spawn({
        let mailer = Arc::clone(&mailer);
        async move { mailer.send(mail("first@example.test"), None).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let second = tokio::time::timeout(
        Duration::from_millis(200),
        mailer.send(mail("second@example.test"), None),
    )
    .await;

    assert!(second.is_err(), "the caller gave up while queued");
    let first = first.await.unwrap().unwrap();
    assert!(first.accepted, "{first:?}");
    assert_eq!(
        eventually_settled(&server, Duration::from_millis(1500)).await,
        1,
        "the cancelled mail went out after all"
    );
}

#[tokio::test]
async fn a_call_cancelled_before_its_content_is_sent_sends_no_content() {
    // The server holds its 354 to DATA; the caller gives up meanwhile.
    let server = SlowServer::start(Duration::from_millis(600), Duration::ZERO).await;
    let mailer = mailer(server.port);

    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        mailer.send(mail("late@example.test"), None),
    )
    .await;
    assert!(cancelled.is_err());
    assert_eq!(
        eventually_settled(&server, Duration::from_millis(1200)).await,
        0,
        "the content was sent after the caller had gone"
    );

    // The session was reset and is still good for the next mail.
    let started = Instant::now();
    let next = mailer.send(mail("next@example.test"), None).await.unwrap();
    assert!(next.accepted, "{next:?}");
    assert_eq!(server.accepted(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_send_does_not_outlive_the_callers_deadline() {
    let server = SlowServer::start(Duration::ZERO, Duration::from_secs(3)).await;
    let mailer = mailer(server.port);
    let deadline = Instant::now() + Duration::from_millis(300);

    let result = mailer
        .send(mail("deadline@example.test"), Some(deadline))
        .await;

    let error = result.unwrap_err().to_string();
    assert!(error.starts_with("smtp-mime: unavailable: "), "{error}");
    assert!(error.contains("timed out"), "{error}");
}
