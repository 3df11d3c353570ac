//! An SMTP catcher (`sandboxes/smtp-catcher`) per test, on free ports, as a
//! child process that dies with the test. Mail sent to it over SMTP (e.g.
//! through the `bindings.smtp-mime` binding, `host` 127.0.0.1, `port`
//! [`SmtpCatcher::smtp_port`]) can be read back with [`SmtpCatcher::messages`];
//! it can also post a mail provider's delivery events
//! ([`SmtpCatcher::send_receipts_to`]).
//!
//! The catcher runs on Python (`aiosmtpd`, see docs/adr/0014); the first
//! start installs it with `scripts/smtp-catcher.sh python`, later starts
//! reuse the virtualenv.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

use crate::process::{ChildGuard, tail};
use crate::sandbox_http::SandboxHttp;
use crate::{free_port, repo_root};

#[derive(Debug)]
pub struct SmtpCatcher {
    smtp_port: u16,
    http: SandboxHttp,
    log: PathBuf,
    process: ChildGuard,
}

impl SmtpCatcher {
    /// Starts a catcher with its log in `dir` (e.g. [`crate::TestEnv::dir`]).
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let python = interpreter().await?;
        let smtp_port = free_port()?;
        let http_port = free_port()?;
        let log = dir.join(format!("smtp-catcher-{smtp_port}.log"));
        let script = repo_root().join("sandboxes/smtp-catcher/smtp_catcher.py");
        let process = ChildGuard::spawn(
            "smtp-catcher",
            &python,
            &[script.display().to_string()],
            &[
                ("SMTP_CATCHER_HOST".into(), "127.0.0.1".into()),
                ("SMTP_CATCHER_SMTP_PORT".into(), smtp_port.to_string()),
                ("SMTP_CATCHER_HTTP_PORT".into(), http_port.to_string()),
            ],
            &log,
        )?;
        let catcher = Self {
            smtp_port,
            http: SandboxHttp::new(format!("http://127.0.0.1:{http_port}")),
            log,
            process,
        };
        catcher
            .http
            .wait_until_ok(
                "/healthz",
                Duration::from_secs(20),
                "the SMTP catcher to answer",
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", tail(&catcher.log, 20)))?;
        Ok(catcher)
    }

    /// Where to send mail (host 127.0.0.1, no auth, no TLS).
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The catcher's HTTP API, `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> &str {
        self.http.base()
    }

    /// Messages with `to` among their envelope recipients (case-insensitive),
    /// oldest first: `{"id","from","to":[..],"subject","text","html","headers":{..},"received_at"}`.
    pub async fn messages(&self, to: &str) -> anyhow::Result<Vec<Value>> {
        self.list(&[("to", to)]).await
    }

    /// Every message caught so far, oldest first.
    pub async fn all_messages(&self) -> anyhow::Result<Vec<Value>> {
        self.list(&[]).await
    }

    /// How many messages were caught (without transferring them).
    pub async fn count(&self) -> anyhow::Result<u64> {
        let answer = self.http.get("/api/messages", &[("limit", "1")]).await?;
        answer["total"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no total in {answer}"))
    }

    /// Forgets every caught message.
    pub async fn clear(&self) -> anyhow::Result<()> {
        self.http.delete("/api/messages").await.map(|_| ())
    }

    /// The next `n` mail transactions are refused with SMTP reply `code` at
    /// `RCPT` (451: temporary, 550: permanent).
    pub async fn reject_next(&self, n: u32, code: u16) -> anyhow::Result<()> {
        self.configure(json!({ "reject_next": n, "reject_code": code, "reject_at": "rcpt" }))
            .await
    }

    /// Like [`Self::reject_next`], but the refusal comes after the message
    /// content, at the end of `DATA`.
    pub async fn reject_next_at_data(&self, n: u32, code: u16) -> anyhow::Result<()> {
        self.configure(json!({ "reject_next": n, "reject_code": code, "reject_at": "data" }))
            .await
    }

    /// Posts delivery events (like a mail provider's webhook) for every
    /// accepted message with an `X-Notification-Id` header to `url`, signed
    /// with `secret` (`Notify-Signature`, as the notification sandbox does).
    pub async fn send_receipts_to(&self, url: &str, secret: &str) -> anyhow::Result<()> {
        self.configure(json!({ "receipt_url": url, "receipt_secret": secret }))
            .await
    }

    /// Mail to these addresses is accepted and then reported undeliverable
    /// (a hard bounce after acceptance); replaces the previous list.
    pub async fn bounce(&self, addresses: &[&str]) -> anyhow::Result<()> {
        self.configure(json!({ "bounce": addresses })).await
    }

    /// `{"received","rejected","stored","sessions","receipts_delivered","receipts_given_up"}`
    /// (`sessions`: SMTP sessions opened, counted at EHLO).
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.http.get("/api/stats", &[]).await
    }

    /// Stops the catcher (to test what happens without it).
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop().await
    }

    /// `Some(status)` if the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.exited()
    }

    async fn configure(&self, config: Value) -> anyhow::Result<()> {
        self.http.post("/api/config", &config).await.map(|_| ())
    }

    async fn list(&self, query: &[(&str, &str)]) -> anyhow::Result<Vec<Value>> {
        self.http.list_in("messages", "/api/messages", query).await
    }
}

/// A minimal SMTP client: sends one mail on a connection of its own (EHLO,
/// MAIL, RCPT, DATA, QUIT), as Dapr's SMTP binding does, to 127.0.0.1:`port`.
/// `message` is the content with CRLF line ends, without the final dot.
/// Returns the first reply that is not 2xx/3xx, if any.
pub async fn smtp_send(
    port: u16,
    from: &str,
    to: &str,
    message: &str,
) -> anyhow::Result<Option<String>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut reply = async || loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("the SMTP server closed the connection"))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return anyhow::Ok(line);
        }
    };
    reply().await?;
    for command in [
        "EHLO test\r\n".to_owned(),
        format!("MAIL FROM:<{from}>\r\n"),
        format!("RCPT TO:<{to}>\r\n"),
        "DATA\r\n".to_owned(),
        format!("{message}\r\n.\r\n"),
        "QUIT\r\n".to_owned(),
    ] {
        write.write_all(command.as_bytes()).await?;
        let line = reply().await?;
        if !(line.starts_with('2') || line.starts_with('3')) {
            return Ok(Some(line));
        }
    }
    Ok(None)
}

/// The catcher's Python, installed once per test process.
async fn interpreter() -> anyhow::Result<PathBuf> {
    static PYTHON: OnceCell<PathBuf> = OnceCell::const_new();
    PYTHON
        .get_or_try_init(|| async {
            let script = repo_root().join("scripts/smtp-catcher.sh");
            let output = tokio::process::Command::new("bash")
                .arg(&script)
                .arg("python")
                .output()
                .await
                .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", script.display()))?;
            anyhow::ensure!(
                output.status.success(),
                "{} python failed: {}",
                script.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            let stdout = String::from_utf8_lossy(&output.stdout);
            let path = stdout
                .lines()
                .last()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| anyhow::anyhow!("{} python printed nothing", script.display()))?;
            Ok(PathBuf::from(path))
        })
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`smtp_send`] of `message` written with LF line ends.
    async fn send_mail(port: u16, from: &str, to: &str, message: &str) -> Option<String> {
        smtp_send(port, from, to, &message.replace('\n', "\r\n"))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_mail_sent_over_smtp_is_read_back_over_http() {
        let dir = tempfile::tempdir().unwrap();
        let catcher = SmtpCatcher::start(dir.path()).await.unwrap();
        let message = "From: LISA Sports <noreply@lisasports.test>\n\
                       To: Ada <ada@example.test>\n\
                       Subject: Your booking\n\
                       Content-Type: text/plain; charset=utf-8\n\
                       \n\
                       Court 3 is yours at 18:00.";
        let refused = send_mail(
            catcher.smtp_port(),
            "noreply@lisasports.test",
            "ada@example.test",
            message,
        )
        .await;
        assert_eq!(refused, None);

        let caught = catcher.messages("Ada@Example.test").await.unwrap();
        assert_eq!(caught.len(), 1);
        assert_eq!(caught[0]["from"], "noreply@lisasports.test");
        assert_eq!(caught[0]["to"], json!(["ada@example.test"]));
        assert_eq!(caught[0]["subject"], "Your booking");
        assert_eq!(caught[0]["text"], "Court 3 is yours at 18:00.\n");
        assert_eq!(caught[0]["headers"]["To"], "Ada <ada@example.test>");
        assert!(
            catcher
                .messages("bob@example.test")
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(catcher.count().await.unwrap(), 1);

        catcher.clear().await.unwrap();
        assert!(catcher.all_messages().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn reject_next_refuses_that_many_mails_then_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let catcher = SmtpCatcher::start(dir.path()).await.unwrap();
        let message = "Subject: hi\n\nhello";
        catcher.reject_next(1, 451).await.unwrap();
        let refused = send_mail(catcher.smtp_port(), "a@x.test", "b@y.test", message).await;
        assert!(
            refused.as_deref().is_some_and(|r| r.starts_with("451")),
            "{refused:?}"
        );

        catcher.reject_next_at_data(1, 550).await.unwrap();
        let refused = send_mail(catcher.smtp_port(), "a@x.test", "b@y.test", message).await;
        assert!(
            refused.as_deref().is_some_and(|r| r.starts_with("550")),
            "{refused:?}"
        );

        assert_eq!(
            send_mail(catcher.smtp_port(), "a@x.test", "b@y.test", message).await,
            None
        );
        assert_eq!(catcher.messages("b@y.test").await.unwrap().len(), 1);
        let stats = catcher.stats().await.unwrap();
        assert_eq!(
            (stats["received"].as_u64(), stats["rejected"].as_u64()),
            (Some(1), Some(2))
        );
        assert!(
            catcher.reject_next(1, 250).await.is_err(),
            "not a refusal code"
        );
    }
}
