//! Sending one notification through its channel's Dapr output binding, and
//! telling retriable failures from terminal ones.
//!
//! * Email: `bindings.smtp`. An SMTP 4xx reply or a connection failure is
//!   retriable; a 5xx reply is terminal. Each SMTP component carries one send
//!   at a time (see [`EmailBindings`]).
//! * SMS and push: `bindings.http` with `errorIfNot2XX: false`, so the
//!   provider's status code comes back as metadata: 2xx sent; 408, 429, 5xx
//!   or no answer retriable; any other 4xx terminal. SMS tries the primary
//!   provider, and on a retriable failure the secondary at once. Both get
//!   the notification id as `Idempotency-Key`, so a repeated send after a
//!   crash is not a second message, and the notification id as `reference`
//!   with a `status_callback` for the provider's delivery receipt
//!   (`routes::receipts`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::domain::Channel;
use crate::settings::{ChannelSettings, ProviderSettings};
use crate::sidecar_grpc::{BindingError, BindingResponse, SidecarGrpc};
use crate::templates::Content;

/// What one attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        provider: String,
        message_id: Option<String>,
    },
    /// May succeed later: retried with backoff while attempts remain.
    Retriable(String),
    /// Will never succeed: failed and dead-lettered.
    Terminal(String),
}

/// A pool of identical SMTP binding components, each used by one send at a
/// time: Dapr 1.18's SMTP binding merges a request's `emailTo` and `subject`
/// into the component's shared metadata, so two concurrent calls on one
/// component can mix their recipients (docs/adr/0020).
#[derive(Debug, Clone)]
pub struct EmailBindings {
    free: Arc<Mutex<Vec<String>>>,
    slots: Arc<Semaphore>,
}

impl EmailBindings {
    pub fn new(names: &[String]) -> Self {
        Self {
            free: Arc::new(Mutex::new(names.to_vec())),
            slots: Arc::new(Semaphore::new(names.len())),
        }
    }

    async fn with_binding<T, F, Fut>(&self, f: F) -> Option<T>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = T>,
    {
        let _permit = self.slots.acquire().await.ok()?;
        let name = self.free.lock().ok()?.pop()?;
        let result = f(name.clone()).await;
        if let Ok(mut free) = self.free.lock() {
            free.push(name);
        }
        Some(result)
    }
}

#[derive(Debug, Clone)]
pub struct Sender {
    client: SidecarGrpc,
    email: EmailBindings,
    channels: ChannelSettings,
    providers: Arc<ProviderSettings>,
}

/// The provider names receipts are posted under (`/v1/providers/{provider}/receipts`).
pub const SMS_PRIMARY: &str = "sms-primary";
pub const SMS_SECONDARY: &str = "sms-secondary";
pub const PUSH: &str = "push";

impl Sender {
    pub fn new(
        client: SidecarGrpc,
        channels: ChannelSettings,
        providers: ProviderSettings,
    ) -> Self {
        Self {
            email: EmailBindings::new(&channels.email_bindings),
            client,
            channels,
            providers: Arc::new(providers),
        }
    }

    pub async fn send(
        &self,
        id: Uuid,
        channel: Channel,
        address: &str,
        content: &Content,
    ) -> Outcome {
        let started = std::time::Instant::now();
        let outcome = match channel {
            Channel::Email => self.email(address, content).await,
            Channel::Sms => self.sms(id, address, content).await,
            Channel::Push => self.push(id, address, content).await,
        };
        let label = match &outcome {
            Outcome::Sent { .. } => "sent",
            Outcome::Retriable(_) => "retriable",
            Outcome::Terminal(_) => "terminal",
        };
        metrics::counter!("notification_sends_total", "channel" => channel.as_str(), "outcome" => label)
            .increment(1);
        metrics::histogram!("notification_send_seconds", "channel" => channel.as_str())
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn email(&self, address: &str, content: &Content) -> Outcome {
        let metadata = HashMap::from([
            ("emailFrom".to_owned(), self.channels.email_from.clone()),
            ("emailTo".to_owned(), address.to_owned()),
            (
                "subject".to_owned(),
                content.subject.clone().unwrap_or_default(),
            ),
        ]);
        // Dapr's SMTP binding sends one text/html part; the text part is
        // rendered and stored but cannot be attached through the binding.
        let body = content.html.clone().unwrap_or_default().into_bytes();
        let client = self.client.clone();
        let result = self
            .email
            .with_binding(|name| async move {
                let result = client.invoke(&name, "create", body, metadata).await;
                (name, result)
            })
            .await;
        match result {
            Some((name, Ok(_))) => Outcome::Sent {
                provider: name,
                message_id: None,
            },
            Some((_, Err(error))) => classify_smtp(&error),
            None => Outcome::Retriable("no email binding available".into()),
        }
    }

    async fn sms(&self, id: Uuid, address: &str, content: &Content) -> Outcome {
        let body = json!({
            "to": address,
            "body": content.body.clone().unwrap_or_default(),
            "reference": id.to_string(),
        });
        let primary = self
            .http(&self.channels.sms_primary_binding, SMS_PRIMARY, id, &body)
            .await;
        let Outcome::Retriable(primary_error) = primary else {
            return primary;
        };
        tracing::warn!(notification.id = %id, error = %primary_error, "SMS primary provider failed; failing over to the secondary");
        metrics::counter!("sms_failovers_total").increment(1);
        match self
            .http(
                &self.channels.sms_secondary_binding,
                SMS_SECONDARY,
                id,
                &body,
            )
            .await
        {
            Outcome::Retriable(secondary_error) => Outcome::Retriable(format!(
                "primary: {primary_error}; secondary: {secondary_error}"
            )),
            other => other,
        }
    }

    async fn push(&self, id: Uuid, address: &str, content: &Content) -> Outcome {
        let body = json!({
            "to": address,
            "title": content.subject.clone().unwrap_or_default(),
            "body": content.body.clone().unwrap_or_default(),
            "reference": id.to_string(),
        });
        self.http(&self.channels.push_binding, PUSH, id, &body)
            .await
    }

    async fn http(&self, binding: &str, provider: &str, id: Uuid, body: &Value) -> Outcome {
        let mut body = body.clone();
        if let Some(url) = self.providers.callback_url(provider) {
            body["status_callback"] = Value::String(url);
        }
        let metadata = HashMap::from([
            ("path".to_owned(), "messages".to_owned()),
            ("Idempotency-Key".to_owned(), id.to_string()),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ]);
        let data = serde_json::to_vec(&body).unwrap_or_default();
        let result = self.client.invoke(binding, "post", data, metadata).await;
        classify_http(binding, result)
    }
}

/// An HTTP provider's answer (through `bindings.http` with errorIfNot2XX
/// off): the status code is in the metadata.
pub fn classify_http(binding: &str, result: Result<BindingResponse, BindingError>) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(error) => return Outcome::Retriable(format!("{binding}: {}", error.message)),
    };
    let status: u16 = response
        .metadata
        .get("statusCode")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body: Value = serde_json::from_slice(&response.data).unwrap_or(Value::Null);
    match status {
        200..=299 => Outcome::Sent {
            provider: binding.to_owned(),
            message_id: body["id"].as_str().map(ToOwned::to_owned),
        },
        408 | 429 | 500..=599 | 0 => Outcome::Retriable(format!("{binding}: HTTP {status}")),
        _ => {
            let code = body["error"]["code"].as_str().unwrap_or("rejected");
            Outcome::Terminal(format!("{binding}: HTTP {status} {code}"))
        }
    }
}

/// The SMTP binding's error text carries the server's reply, possibly
/// wrapped (`... sending email failed: gomail: could not send email 1: 550
/// 5.7.1 Rejected`): the first whitespace-separated 3-digit word is the
/// reply code. None (a connection error) is retriable.
pub fn classify_smtp(error: &BindingError) -> Outcome {
    let message = &error.message;
    let reply = tail(message)
        .split_whitespace()
        .find(|w| w.len() == 3 && w.chars().all(|c| c.is_ascii_digit()))
        .and_then(|code| code.parse::<u16>().ok());
    match reply {
        Some(500..=599) => Outcome::Terminal(format!("smtp: {}", tail(message))),
        _ => Outcome::Retriable(format!("smtp: {}", tail(message))),
    }
}

fn tail(message: &str) -> &str {
    message
        .split("sending email failed: ")
        .nth(1)
        .unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: &str, body: &str) -> Result<BindingResponse, BindingError> {
        Ok(BindingResponse {
            data: body.as_bytes().to_vec(),
            metadata: HashMap::from([("statusCode".to_owned(), status.to_owned())]),
        })
    }

    #[test]
    fn http_answers_are_classified() {
        assert!(matches!(
            classify_http("p", http("202", r#"{"id":"msg_1"}"#)),
            Outcome::Sent { message_id: Some(ref id), .. } if id == "msg_1"
        ));
        for retriable in ["408", "429", "500", "503"] {
            assert!(matches!(
                classify_http("p", http(retriable, "")),
                Outcome::Retriable(_)
            ));
        }
        assert!(matches!(
            classify_http("p", http("400", r#"{"error":{"code":"invalid_recipient"}}"#)),
            Outcome::Terminal(ref r) if r.contains("invalid_recipient")
        ));
        let network = Err(BindingError {
            code: tonic::Code::Internal,
            message: "connection refused".into(),
        });
        assert!(matches!(classify_http("p", network), Outcome::Retriable(_)));
    }

    #[test]
    fn smtp_replies_are_classified() {
        let error = |m: &str| BindingError {
            code: tonic::Code::Internal,
            message: m.into(),
        };
        let failed = "error when invoking output binding communication-email: error from smtp binding, sending email failed: ";
        assert!(matches!(
            classify_smtp(&error(&format!("{failed}550 5.1.1 unknown user"))),
            Outcome::Terminal(_)
        ));
        assert!(matches!(
            classify_smtp(&error(&format!("{failed}451 4.3.0 try later"))),
            Outcome::Retriable(_)
        ));
        assert!(matches!(
            classify_smtp(&error(&format!(
                "{failed}gomail: could not send email 1: 550 5.7.1 Rejected"
            ))),
            Outcome::Terminal(_)
        ));
        assert!(matches!(
            classify_smtp(&error(&format!(
                "{failed}dial tcp 127.0.0.1:550: connect: connection refused"
            ))),
            Outcome::Retriable(_)
        ));
        assert!(matches!(
            classify_smtp(&error(&format!("{failed}dial tcp: connection refused"))),
            Outcome::Retriable(_)
        ));
    }
}
