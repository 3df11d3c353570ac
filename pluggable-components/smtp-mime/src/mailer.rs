//! One component instance's SMTP side: reused SMTP sessions, at most
//! `poolSize` transactions at a time, and the outcome of one send as the
//! contract reports it.
//!
//! The sessions are pooled here rather than by lettre's transport: lettre
//! connects without `TCP_NODELAY`, and it writes a message's content and the
//! final `CRLF.CRLF` as two writes, so Nagle's algorithm holds the second
//! until the server acknowledges the first, which a server with delayed
//! acknowledgements does after 40 ms: every message took 40 ms more than its
//! transaction (measured: `make bench-communication`, one send p50 45 ms
//! with lettre's pool, 2–4 ms with this one). Its pool also opens as many
//! sessions as there are concurrent sends and tests each idle session with a
//! `NOOP` round trip before every reuse.
//!
//! A transaction runs step by step (MAIL, RCPT, DATA, content) so that
//! * a reused session the server has closed in the meantime fails at MAIL,
//!   before anything was accepted, and the send moves to a fresh session;
//! * a call daprd cancelled (its Resiliency timeout) is not carried on: the
//!   content is not sent once the caller has gone, so the caller's retry is
//!   not a second mail. What remains uncertain is only the wait for the
//!   server's final reply;
//! * a refused transaction is reset (`RSET`) and its session reused.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ComponentConfig, TlsMode};

/// Idle sessions are closed after this; most relays drop idle clients after
/// a few minutes anyway.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A session idle for longer is checked with `NOOP` before it is reused (the
/// server may have closed it); a busier one is reused at once.
const CHECK_AFTER: Duration = Duration::from_secs(2);
/// Bound on a `NOOP`, `RSET` or `QUIT`.
const SHORT_COMMAND: Duration = Duration::from_secs(2);

/// The server answered the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub accepted: bool,
    pub code: u16,
    pub message: String,
}

/// Why a mail was not handed to the server.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No reply to the transaction: connection refused, timeout, TLS
    /// failure, the session dropped, the server refused the session itself
    /// (greeting, EHLO, STARTTLS, AUTH: a configuration problem, not this
    /// mail's), or the caller went away.
    #[error("smtp-mime: unavailable: {0}")]
    Unavailable(String),
    /// This mail can never be sent to this server (e.g. non-ASCII addresses
    /// without SMTPUTF8).
    #[error("smtp-mime: invalid request: {0}")]
    Invalid(String),
}

fn unavailable(text: impl Into<String>) -> SendError {
    SendError::Unavailable(text.into())
}

/// How to open a session.
struct Connector {
    host: String,
    port: u16,
    tls: TlsMode,
    tls_parameters: Option<TlsParameters>,
    hello: ClientId,
    credentials: Option<Credentials>,
    timeout: Duration,
}

struct Session {
    connection: AsyncSmtpConnection,
    idle_since: Instant,
}

pub struct Mailer {
    connector: Arc<Connector>,
    idle: Arc<Mutex<Vec<Session>>>,
    /// Bounds concurrent transactions (and so open sessions) to `poolSize`.
    slots: Arc<Semaphore>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("host", &self.connector.host)
            .field("port", &self.connector.port)
            .field("available_slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

/// Sets its flag when the future that started a send is dropped before the
/// send is done (the gRPC call was cancelled).
struct CallerGone {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CallerGone {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

impl Mailer {
    pub fn new(config: &ComponentConfig) -> Result<Self, String> {
        let tls_parameters = match config.tls {
            TlsMode::None => None,
            TlsMode::Opportunistic | TlsMode::Required | TlsMode::Wrapper => Some(
                TlsParameters::builder(config.host.clone())
                    .dangerous_accept_invalid_certs(config.skip_tls_verify)
                    .dangerous_accept_invalid_hostnames(config.skip_tls_verify)
                    .build_rustls()
                    .map_err(|e| format!("TLS set-up: {e}"))?,
            ),
        };
        let connector = Connector {
            host: config.host.clone(),
            port: config.port,
            tls: config.tls,
            tls_parameters,
            hello: config
                .helo_name
                .clone()
                .map(ClientId::Domain)
                .unwrap_or_default(),
            credentials: config
                .credentials
                .as_ref()
                .map(|(user, password)| Credentials::new(user.clone(), password.clone())),
            timeout: config.timeout,
        };
        let idle = Arc::new(Mutex::new(Vec::new()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap_idle(Arc::downgrade(&idle)));
        }
        Ok(Self {
            connector: Arc::new(connector),
            idle,
            slots: Arc::new(Semaphore::new(config.pool_size as usize)),
        })
    }

    /// Sends one message, by `deadline` if the caller has one (daprd sends
    /// its timeout as `grpc-timeout`). Waiting for a free slot happens here,
    /// so a call cancelled while it waits sends nothing; the transaction runs
    /// as a task of its own so that a cancelled call never leaves a session
    /// half-way through a transaction, and it does not send the content once
    /// the caller has gone.
    pub async fn send(
        &self,
        message: Message,
        deadline: Option<Instant>,
    ) -> Result<Reply, SendError> {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| unavailable("the component is shutting down"))?;
        let gone = Arc::new(AtomicBool::new(false));
        let mut guard = CallerGone {
            flag: Arc::clone(&gone),
            armed: true,
        };
        let connector = Arc::clone(&self.connector);
        let idle = Arc::clone(&self.idle);
        let task = tokio::spawn(transact(connector, idle, permit, message, deadline, gone));
        let result = task
            .await
            .map_err(|e| unavailable(format!("the send task failed: {e}")))?;
        guard.armed = false;
        result
    }

    /// Closes the idle sessions (QUIT, at once, within 2 s) and refuses
    /// further sends.
    pub async fn shutdown(&self) {
        self.slots.close();
        let sessions = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        let quits = sessions.into_iter().map(|mut session| async move {
            let _ = tokio::time::timeout(SHORT_COMMAND, session.connection.quit()).await;
        });
        futures::future::join_all(quits).await;
    }
}

/// One mail: a session (reused or new), then the transaction.
async fn transact(
    connector: Arc<Connector>,
    idle: Arc<Mutex<Vec<Session>>>,
    _permit: OwnedSemaphorePermit,
    message: Message,
    deadline: Option<Instant>,
    gone: Arc<AtomicBool>,
) -> Result<Reply, SendError> {
    let within = |limit: Duration| match deadline {
        Some(deadline) => limit.min(deadline.saturating_duration_since(Instant::now())),
        None => limit,
    };
    let envelope = message.envelope().clone();
    let content = message.formatted();
    let (mut session, mut reused) = match reuse(&idle).await {
        Some(session) => (session, true),
        None => (
            connector.open_session(within(connector.timeout)).await?,
            false,
        ),
    };
    loop {
        if gone.load(Ordering::SeqCst) {
            recycle(&idle, session);
            return Err(unavailable(
                "the caller went away before the transaction began",
            ));
        }
        let step = tokio::time::timeout(
            within(connector.timeout),
            transaction(&mut session.connection, &envelope, &content, &gone),
        )
        .await;
        match step {
            // Dropped mid-transaction: the session is not reused.
            Err(_) => return Err(unavailable("the SMTP transaction timed out")),
            Ok(Ok(response)) => {
                recycle(&idle, session);
                return Ok(reply(true, &response));
            }
            // A reused session the server had closed: nothing was accepted
            // yet (MAIL got no reply); once more on a fresh session.
            Ok(Err(Step::MailWithoutReply(error))) if reused => {
                tracing::debug!(error = %describe(&error), "pooled session was closed by the server; opening a new one");
                session = connector.open_session(within(connector.timeout)).await?;
                reused = false;
            }
            Ok(Err(Step::MailWithoutReply(error) | Step::NoReply(error))) => {
                return Err(unavailable(describe(&error)));
            }
            Ok(Err(Step::Refused(error))) => {
                let code = error.status().map_or(0, u16::from);
                let text = error_text(&error);
                reset_and_recycle(&idle, session).await;
                return Ok(Reply {
                    accepted: false,
                    code,
                    message: text,
                });
            }
            Ok(Err(Step::Unsupported(why))) => {
                reset_and_recycle(&idle, session).await;
                return Err(SendError::Invalid(why));
            }
            Ok(Err(Step::CallerGone)) => {
                reset_and_recycle(&idle, session).await;
                return Err(unavailable(
                    "the caller went away before the content was sent",
                ));
            }
        }
    }
}

/// How a transaction step ended, when it did not end in acceptance.
enum Step {
    /// MAIL got no reply (a pooled session the server closed, typically).
    MailWithoutReply(SmtpError),
    /// A later step got no reply.
    NoReply(SmtpError),
    /// The server refused (4xx/5xx) at MAIL, RCPT, DATA or the content.
    Refused(SmtpError),
    /// This mail needs an extension the server lacks.
    Unsupported(String),
    /// The caller went away before the content was sent.
    CallerGone,
}

/// MAIL, RCPT (each recipient), DATA, content — as lettre's own `send`, but
/// step by step.
async fn transaction(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    content: &[u8],
    gone: &AtomicBool,
) -> Result<Response, Step> {
    let classify = |error: SmtpError| {
        if error.status().is_some() {
            Step::Refused(error)
        } else {
            Step::NoReply(error)
        }
    };
    let mut parameters = Vec::new();
    let non_ascii_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii_addresses {
        if !connection
            .server_info()
            .supports_feature(Extension::SmtpUtfEight)
        {
            return Err(Step::Unsupported(
                "non-ASCII addresses, and the server does not offer SMTPUTF8".into(),
            ));
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !content.is_ascii() {
        if !connection
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            return Err(Step::Unsupported(
                "8-bit content, and the server does not offer 8BITMIME".into(),
            ));
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    connection
        .command(Mail::new(envelope.from().cloned(), parameters))
        .await
        .map_err(|error| {
            if error.status().is_some() {
                Step::Refused(error)
            } else {
                Step::MailWithoutReply(error)
            }
        })?;
    for recipient in envelope.to() {
        connection
            .command(Rcpt::new(recipient.clone(), Vec::new()))
            .await
            .map_err(classify)?;
    }
    connection.command(Data).await.map_err(classify)?;
    if gone.load(Ordering::SeqCst) {
        return Err(Step::CallerGone);
    }
    connection.message(content).await.map_err(classify)
}

fn reply(accepted: bool, response: &Response) -> Reply {
    Reply {
        accepted,
        code: response.code().into(),
        message: response.message().collect::<Vec<_>>().join(" "),
    }
}

/// Back to the pool, and sessions idle too long closed.
fn recycle(idle: &Mutex<Vec<Session>>, mut session: Session) {
    if session.connection.has_broken() {
        return;
    }
    session.idle_since = Instant::now();
    if let Ok(mut idle) = idle.lock() {
        idle.push(session);
    }
    close_in_background(take_expired(idle));
}

/// Removes the sessions idle for longer than [`IDLE_TIMEOUT`] from the pool.
fn take_expired(idle: &Mutex<Vec<Session>>) -> Vec<Session> {
    let Ok(mut idle) = idle.lock() else {
        return Vec::new();
    };
    let (expired, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut *idle)
        .into_iter()
        .partition(|s| s.idle_since.elapsed() > IDLE_TIMEOUT);
    *idle = keep;
    expired
}

/// Closes sessions idle for longer than [`IDLE_TIMEOUT`] even when no mail
/// comes to take them, until the mailer is gone.
async fn reap_idle(idle: std::sync::Weak<Mutex<Vec<Session>>>) {
    let mut tick = tokio::time::interval(IDLE_TIMEOUT / 2);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(idle) = idle.upgrade() else { return };
        close_in_background(take_expired(&idle));
    }
}

/// After a refusal mid-transaction: `RSET`, then reusable; otherwise closed.
async fn reset_and_recycle(idle: &Mutex<Vec<Session>>, mut session: Session) {
    let reset = tokio::time::timeout(SHORT_COMMAND, session.connection.command(Rset)).await;
    if matches!(reset, Ok(Ok(_))) {
        recycle(idle, session);
    } else {
        close_in_background(vec![session]);
    }
}

fn close_in_background(sessions: Vec<Session>) {
    if sessions.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for mut session in sessions {
            let _ = tokio::time::timeout(SHORT_COMMAND, session.connection.abort()).await;
        }
    });
}

/// An idle session fit for the next transaction, if any. Sessions idle for
/// longer than [`IDLE_TIMEOUT`] are closed; one idle for longer than
/// [`CHECK_AFTER`] is checked with `NOOP`, and if that fails every idle
/// session is dropped (the server or the network went away).
async fn reuse(idle: &Mutex<Vec<Session>>) -> Option<Session> {
    loop {
        let mut session = idle.lock().ok()?.pop()?;
        let idle_for = session.idle_since.elapsed();
        if idle_for > IDLE_TIMEOUT {
            close_in_background(vec![session]);
            continue;
        }
        if idle_for > CHECK_AFTER {
            let alive = tokio::time::timeout(SHORT_COMMAND, session.connection.test_connected())
                .await
                .unwrap_or(false);
            if !alive {
                let stale = idle
                    .lock()
                    .map(|mut idle| std::mem::take(&mut *idle))
                    .unwrap_or_default();
                close_in_background(stale);
                return None;
            }
        }
        return Some(session);
    }
}

impl Connector {
    /// A new session within `limit`.
    async fn open_session(&self, limit: Duration) -> Result<Session, SendError> {
        match tokio::time::timeout(limit, self.open()).await {
            Ok(Ok(connection)) => Ok(Session {
                connection,
                idle_since: Instant::now(),
            }),
            Ok(Err(OpenError::Io(error))) => Err(unavailable(format!("network error: {error}"))),
            // A refusal of the session itself (greeting, EHLO, STARTTLS,
            // AUTH) is about the server's configuration, not this mail: no
            // per-message outcome, so the caller retries instead of failing
            // every mail for good.
            Ok(Err(OpenError::Smtp(error))) => Err(unavailable(format!(
                "opening a session: {}",
                describe(&error)
            ))),
            Ok(Err(OpenError::Insecure)) => Err(unavailable(
                "the server offers no STARTTLS; credentials are never sent unencrypted",
            )),
            Err(_) => Err(unavailable("connecting timed out")),
        }
    }

    /// TCP without Nagle's delay (except `wrapper`, where lettre connects),
    /// EHLO, TLS as configured, AUTH only over an encrypted session.
    async fn open(&self) -> Result<AsyncSmtpConnection, OpenError> {
        let mut connection = match (&self.tls, &self.tls_parameters) {
            // TLS from the first byte (port 465): lettre connects itself,
            // without TCP_NODELAY.
            (TlsMode::Wrapper, Some(parameters)) => {
                AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(parameters.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let tcp = TcpStream::connect((self.host.as_str(), self.port))
                    .await
                    .map_err(OpenError::Io)?;
                tcp.set_nodelay(true).map_err(OpenError::Io)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?
            }
        };
        match (&self.tls, &self.tls_parameters) {
            (TlsMode::Opportunistic, Some(parameters)) if connection.can_starttls() => {
                connection.starttls(parameters.clone(), &self.hello).await?;
            }
            (TlsMode::Required, Some(parameters)) => {
                // starttls refuses a server that does not offer STARTTLS.
                connection.starttls(parameters.clone(), &self.hello).await?;
            }
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            // `tls: opportunistic` against a server without STARTTLS (or an
            // attacker stripping it): no AUTH in clear text.
            if !connection.is_encrypted() {
                connection.abort().await;
                return Err(OpenError::Insecure);
            }
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }
}

/// Why a session could not be opened.
#[derive(Debug)]
enum OpenError {
    /// TCP: no reply possible.
    Io(std::io::Error),
    /// From lettre: a refusal of the session or no reply.
    Smtp(SmtpError),
    /// Credentials configured, but the session is not encrypted.
    Insecure,
}

impl From<SmtpError> for OpenError {
    fn from(error: SmtpError) -> Self {
        Self::Smtp(error)
    }
}

/// The server's text of a refusal.
fn error_text(error: &SmtpError) -> String {
    std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// The error and its causes on one line (`network error: Connection refused`).
fn describe(error: &SmtpError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error).and_then(std::error::Error::source);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if error.is_timeout() && !text.contains("timed out") {
        text.push_str(" (timed out)");
    }
    text
}
