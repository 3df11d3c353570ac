//! Sending one notification through its channel's Dapr output binding, and
//! telling retriable failures from terminal ones.
//!
//! * Email: `bindings.smtp-mime`, our pluggable SMTP binding
//!   (pluggable-components/smtp-mime, docs/adr/0023): text and HTML parts,
//!   `Message-ID` `<notification id@domain>` and `X-Notification-Id` (the
//!   email provider's delivery events name the notification by it). The
//!   server's reply comes back as metadata: 2xx sent, 4xx retriable, 5xx
//!   terminal; no reply (connection, timeout) retriable; a request the
//!   binding refuses as invalid terminal.
//! * SMS and push: `bindings.http` with `errorIfNot2XX: false`, so the
//!   provider's status code comes back as metadata: 2xx sent; 408, 429, 5xx
//!   or no answer retriable; any other 4xx terminal. SMS tries the primary
//!   provider, and on a retriable failure the secondary at once. Both get
//!   the notification id as `Idempotency-Key`, so a repeated send after a
//!   crash is not a second message, and the notification id as `reference`
//!   with a `status_callback` for the provider's delivery receipt
//!   (`routes::receipts`).

use std::collections::HashMap;
use std::sync::Arc;

use platform_dapr::{BindingError, BindingResponse, Sidecar};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Channel;
use crate::settings::{ChannelSettings, ProviderSettings};
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

#[derive(Debug, Clone)]
pub struct Sender {
    client: Sidecar,
    channels: ChannelSettings,
    providers: Arc<ProviderSettings>,
}

/// The provider names receipts are posted under (`/v1/providers/{provider}/receipts`).
pub const EMAIL: &str = "email";
pub const SMS_PRIMARY: &str = "sms-primary";
pub const SMS_SECONDARY: &str = "sms-secondary";
pub const PUSH: &str = "push";

impl Sender {
    pub fn new(client: Sidecar, channels: ChannelSettings, providers: ProviderSettings) -> Self {
        Self {
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
            Channel::Email => self.email(id, address, content).await,
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

    async fn email(&self, id: Uuid, address: &str, content: &Content) -> Outcome {
        let metadata = HashMap::from([
            ("emailFrom".to_owned(), self.channels.email_from.clone()),
            ("emailTo".to_owned(), address.to_owned()),
            (
                "subject".to_owned(),
                content.subject.clone().unwrap_or_default(),
            ),
        ]);
        let message_id = format!("<{id}@{}>", self.channels.message_id_domain);
        let body = json!({
            "text": content.text,
            "html": content.html,
            "headers": {
                "Message-ID": message_id,
                "X-Notification-Id": id.to_string(),
            },
        });
        let data = serde_json::to_vec(&body).unwrap_or_default();
        let binding = &self.channels.email_binding;
        let result = self
            .client
            .invoke_binding_with_metadata(binding, "create", data, metadata)
            .await;
        classify_smtp(binding, result)
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
        let result = self
            .client
            .invoke_binding_with_metadata(binding, "post", data, metadata)
            .await;
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

/// The SMTP binding's answer (contracts/bindings/smtp-mime.md): the
/// server's reply as `outcome`/`smtpCode`/`smtpMessage` metadata; an error
/// when there was no reply (retriable) or the request was invalid (terminal).
pub fn classify_smtp(binding: &str, result: Result<BindingResponse, BindingError>) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(error) if error.message.contains("smtp-mime: invalid request: ") => {
            return Outcome::Terminal(format!("{binding}: {}", error.message));
        }
        Err(error) => return Outcome::Retriable(format!("{binding}: {}", error.message)),
    };
    let field = |name: &str| response.metadata.get(name).map(String::as_str);
    let code: u16 = field("smtpCode").and_then(|c| c.parse().ok()).unwrap_or(0);
    let reply = format!("SMTP {code} {}", field("smtpMessage").unwrap_or_default());
    match (field("outcome"), code) {
        (Some("accepted"), _) => Outcome::Sent {
            provider: binding.to_owned(),
            message_id: field("messageId").map(ToOwned::to_owned),
        },
        (Some(_), 500..=599) => Outcome::Terminal(format!("{binding}: {reply}")),
        (Some(_), _) => Outcome::Retriable(format!("{binding}: {reply}")),
        // A binding that answers without an outcome (not bindings.smtp-mime,
        // e.g. Dapr's bindings.smtp, which succeeds only when the server
        // accepted): sending again would be a second mail.
        (None, _) => {
            tracing::warn!(
                binding,
                "the email binding answered without an outcome; taken as sent"
            );
            Outcome::Sent {
                provider: binding.to_owned(),
                message_id: None,
            }
        }
    }
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
            message: "connection refused".into(),
        });
        assert!(matches!(classify_http("p", network), Outcome::Retriable(_)));
    }

    fn smtp(outcome: &str, code: &str) -> Result<BindingResponse, BindingError> {
        Ok(BindingResponse {
            data: Vec::new(),
            metadata: HashMap::from([
                ("outcome".to_owned(), outcome.to_owned()),
                ("smtpCode".to_owned(), code.to_owned()),
                ("smtpMessage".to_owned(), "text".to_owned()),
                ("messageId".to_owned(), "<m@d>".to_owned()),
            ]),
        })
    }

    #[test]
    fn smtp_replies_are_classified() {
        assert!(matches!(
            classify_smtp("e", smtp("accepted", "250")),
            Outcome::Sent { message_id: Some(ref id), .. } if id == "<m@d>"
        ));
        assert!(matches!(
            classify_smtp("e", smtp("rejected", "550")),
            Outcome::Terminal(ref r) if r.contains("SMTP 550")
        ));
        let no_outcome = Ok(BindingResponse::default());
        assert!(matches!(
            classify_smtp("e", no_outcome),
            Outcome::Sent {
                message_id: None,
                ..
            }
        ));
        for retriable in ["451", "421", ""] {
            assert!(matches!(
                classify_smtp("e", smtp("rejected", retriable)),
                Outcome::Retriable(_)
            ));
        }
        let error = |m: &str| Err(BindingError { message: m.into() });
        assert!(matches!(
            classify_smtp(
                "e",
                error(
                    "error invoking output binding e: rpc error: code = Unavailable desc = smtp-mime: unavailable: connection refused"
                )
            ),
            Outcome::Retriable(_)
        ));
        assert!(matches!(
            classify_smtp(
                "e",
                error(
                    "error invoking output binding e: rpc error: code = InvalidArgument desc = smtp-mime: invalid request: emailTo is not an address"
                )
            ),
            Outcome::Terminal(_)
        ));
    }
}
