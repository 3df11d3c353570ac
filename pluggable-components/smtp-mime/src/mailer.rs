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
//! with lettre's pool, below 10 ms with this one). Its pool also opens as
//! many sessions as there are concurrent sends and tests each idle session
//! with a `NOOP` round trip before every reuse.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{ComponentConfig, TlsMode};

/// Idle sessions are closed after this; most relays drop idle clients after
/// a few minutes anyway.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A session idle for longer is checked with `NOOP` before it is reused (the
/// server may have closed it); a busier one is reused at once.
const CHECK_AFTER: Duration = Duration::from_secs(2);

/// The server answered the transaction (or refused the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub accepted: bool,
    pub code: u16,
    pub message: String,
}

/// No SMTP reply at all: connection refused, timeout, TLS failure, the
/// session dropped, or the client could not speak to this server.
#[derive(Debug, thiserror::Error)]
#[error("smtp-mime: unavailable: {0}")]
pub struct Unavailable(pub String);

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
        Ok(Self {
            connector: Arc::new(connector),
            idle: Arc::new(Mutex::new(Vec::new())),
            slots: Arc::new(Semaphore::new(config.pool_size as usize)),
        })
    }

    /// Sends one message. Runs as a task of its own so that a caller that
    /// gives up (daprd cancelling the call) never leaves a session half-way
    /// through a transaction in the pool.
    pub async fn send(&self, message: Message) -> Result<Reply, Unavailable> {
        let slots = Arc::clone(&self.slots);
        let connector = Arc::clone(&self.connector);
        let idle = Arc::clone(&self.idle);
        let task = tokio::spawn(async move {
            let _slot = slots
                .acquire_owned()
                .await
                .map_err(|_| Unavailable("the component is shutting down".into()))?;
            let envelope = message.envelope().clone();
            let content = message.formatted();
            let mut session = match reuse(&idle).await {
                Some(session) => session,
                None => match tokio::time::timeout(connector.timeout, connector.open()).await {
                    Ok(Ok(connection)) => Session {
                        connection,
                        idle_since: Instant::now(),
                    },
                    Ok(Err(OpenError::Smtp(error))) => return classify(Err(error)),
                    Ok(Err(OpenError::Io(error))) => {
                        return Err(Unavailable(format!("network error: {error}")));
                    }
                    Err(_) => return Err(Unavailable("connecting timed out".into())),
                },
            };
            let sent = tokio::time::timeout(
                connector.timeout,
                session.connection.send(&envelope, &content),
            )
            .await;
            match sent {
                Ok(result) => {
                    if !session.connection.has_broken() {
                        session.idle_since = Instant::now();
                        if let Ok(mut idle) = idle.lock() {
                            idle.push(session);
                        }
                    }
                    classify(result)
                }
                // Dropped mid-transaction: the session is not reused.
                Err(_) => Err(Unavailable("the SMTP transaction timed out".into())),
            }
        });
        task.await
            .map_err(|e| Unavailable(format!("the send task failed: {e}")))?
    }

    /// Closes the idle sessions (QUIT) and refuses further sends.
    pub async fn shutdown(&self) {
        self.slots.close();
        let sessions = self
            .idle
            .lock()
            .map(|mut idle| std::mem::take(&mut *idle))
            .unwrap_or_default();
        for mut session in sessions {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.connection.quit()).await;
        }
    }
}

/// An idle session fit for the next transaction, if any.
async fn reuse(idle: &Mutex<Vec<Session>>) -> Option<Session> {
    loop {
        let mut session = idle.lock().ok()?.pop()?;
        let idle_for = session.idle_since.elapsed();
        if idle_for > IDLE_TIMEOUT {
            tokio::spawn(async move { session.connection.abort().await });
            continue;
        }
        if idle_for > CHECK_AFTER {
            let alive =
                tokio::time::timeout(Duration::from_secs(2), session.connection.test_connected())
                    .await
                    .unwrap_or(false);
            if !alive {
                continue;
            }
        }
        return Some(session);
    }
}

impl Connector {
    /// A new session: TCP without Nagle's delay, EHLO, TLS as configured,
    /// AUTH when credentials are set.
    async fn open(&self) -> Result<AsyncSmtpConnection, OpenError> {
        let mut connection = match (&self.tls, &self.tls_parameters) {
            // TLS from the first byte (port 465): lettre connects itself.
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
    /// From lettre: a reply (e.g. 535 at AUTH) or no reply.
    Smtp(SmtpError),
}

impl From<SmtpError> for OpenError {
    fn from(error: SmtpError) -> Self {
        Self::Smtp(error)
    }
}

/// Any reply code from the server is a `Reply` (4xx transient, 5xx
/// permanent: the caller decides); anything else is `Unavailable`.
/// lettre drops a session whose transaction failed, so a refusal never
/// leaves a pooled session in the middle of a transaction.
fn classify(
    result: Result<lettre::transport::smtp::response::Response, SmtpError>,
) -> Result<Reply, Unavailable> {
    match result {
        Ok(response) => Ok(Reply {
            accepted: true,
            code: response.code().into(),
            message: response.message().collect::<Vec<_>>().join(" "),
        }),
        Err(error) => match error.status() {
            Some(code) => Ok(Reply {
                accepted: false,
                code: code.into(),
                message: std::error::Error::source(&error)
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }),
            None => Err(Unavailable(describe(&error))),
        },
    }
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
