//! What the SMTP catcher cannot play, against a small SMTP peer of the
//! test's own whose replies can be held back or scripted; the binding is
//! used as a library (`Mailer`), the level where these happen.
//!
//! * A send whose caller gives up (daprd's Resiliency timeout cancels the
//!   gRPC call) must not go out anyway: the caller retries, and that would
//!   be a second mail.
//! * Credentials are never sent over an unencrypted session, and a refusal
//!   of the session itself is not a verdict on the mail.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lettre::Message;
use smtp_mime_binding::config::ComponentConfig;
use smtp_mime_binding::mailer::Mailer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// How the peer greets and what it offers after EHLO.
#[derive(Clone, Copy)]
struct Script {
    greeting: &'static str,
    ehlo: &'static str,
}

const PLAIN: Script = Script {
    greeting: "220 slow ESMTP\r\n",
    ehlo: "250 slow\r\n",
};

/// An SMTP server that holds its reply to `DATA` and to the end of the
/// content for the given times, counts the mails it accepted and the AUTH
/// commands it saw.
struct SlowServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    auth_seen: Arc<AtomicUsize>,
}

impl SlowServer {
    async fn start(hold_data: Duration, hold_content: Duration) -> Self {
        Self::scripted(PLAIN, hold_data, hold_content).await
    }

    async fn scripted(script: Script, hold_data: Duration, hold_content: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let auth_seen = Arc::new(AtomicUsize::new(0));
        let (counter, auths) = (Arc::clone(&accepted), Arc::clone(&auth_seen));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (counter, auths) = (Arc::clone(&counter), Arc::clone(&auths));
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(script.greeting.as_bytes()).await.ok();
                    if !script.greeting.starts_with("220") {
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => script.ehlo.as_bytes(),
                            "AUTH" => {
                                auths.fetch_add(1, Ordering::SeqCst);
                                b"235 accepted\r\n"
                            }
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
        Self {
            port,
            accepted,
            auth_seen,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn mailer(port: u16) -> Mailer {
    mailer_with(port, &[("tls", "none")])
}

fn mailer_with(port: u16, extra: &[(&str, &str)]) -> Mailer {
    let mut metadata: HashMap<String, String> = [
        ("host", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("poolSize", "1".to_owned()),
        ("timeoutSeconds", "10".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        metadata.insert((*k).to_owned(), (*v).to_owned());
    }
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

#[tokio::test]
async fn credentials_are_never_sent_over_an_unencrypted_session() {
    // Offers AUTH but no STARTTLS (or an attacker stripped it).
    let script = Script {
        greeting: "220 plain ESMTP\r\n",
        ehlo: "250-plain\r\n250 AUTH PLAIN LOGIN\r\n",
    };
    let server = SlowServer::scripted(script, Duration::ZERO, Duration::ZERO).await;
    let mailer = mailer_with(
        server.port,
        &[
            ("tls", "opportunistic"),
            ("user", "app"),
            ("password", "s3cret"),
        ],
    );

    let error = mailer
        .send(mail("auth@example.test"), None)
        .await
        .unwrap_err()
        .to_string();

    assert!(error.starts_with("smtp-mime: unavailable: "), "{error}");
    assert!(error.contains("STARTTLS"), "{error}");
    assert_eq!(
        server.auth_seen.load(Ordering::SeqCst),
        0,
        "AUTH went out in clear text"
    );
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn a_refused_session_is_unavailable_not_a_verdict_on_the_mail() {
    // E.g. our address not allowed (554 at the greeting): a configuration
    // matter, to be retried, not a permanent failure of this mail.
    let script = Script {
        greeting: "554 5.7.1 not for you\r\n",
        ehlo: "250 never\r\n",
    };
    let server = SlowServer::scripted(script, Duration::ZERO, Duration::ZERO).await;
    let mailer = mailer(server.port);

    let error = mailer
        .send(mail("refused@example.test"), None)
        .await
        .unwrap_err()
        .to_string();

    assert!(
        error.starts_with("smtp-mime: unavailable: opening a session"),
        "{error}"
    );
}
