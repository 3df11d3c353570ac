//! Providers and the messages they accept, parsed at the boundary.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The providers one process plays, chosen by the first path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Provider {
    #[serde(rename = "sms-primary")]
    SmsPrimary,
    #[serde(rename = "sms-secondary")]
    SmsSecondary,
    #[serde(rename = "push")]
    Push,
}

impl Provider {
    pub const ALL: [Self; 3] = [Self::SmsPrimary, Self::SmsSecondary, Self::Push];

    pub fn parse(name: &str) -> Result<Self, ApiError> {
        match name {
            "sms-primary" => Ok(Self::SmsPrimary),
            "sms-secondary" => Ok(Self::SmsSecondary),
            "push" => Ok(Self::Push),
            other => Err(ApiError::UnknownProvider(other.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SmsPrimary => "sms-primary",
            Self::SmsSecondary => "sms-secondary",
            Self::Push => "push",
        }
    }

    fn is_sms(self) -> bool {
        matches!(self, Self::SmsPrimary | Self::SmsSecondary)
    }
}

/// The SMS number that is refused permanently (as an unreachable number).
pub const INVALID_SMS_RECIPIENT: &str = "+15005550001";
/// The push token that is refused permanently (as an unregistered device).
pub const INVALID_PUSH_RECIPIENT: &str = "invalid-token";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    to: String,
    body: String,
    reference: String,
    #[serde(default)]
    status_callback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    to: String,
    title: String,
    body: String,
    reference: String,
    #[serde(default)]
    status_callback: Option<String>,
}

/// A valid message for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub to: String,
    pub title: Option<String>,
    pub body: String,
    pub reference: String,
    /// Where the delivery receipt goes (as Twilio's `StatusCallback`).
    pub status_callback: Option<String>,
}

impl OutgoingMessage {
    pub fn parse(provider: Provider, body: &serde_json::Value) -> Result<Self, ApiError> {
        let invalid = |e: serde_json::Error| ApiError::InvalidRequest(format!("invalid body: {e}"));
        let message = if provider.is_sms() {
            let raw = RawSms::deserialize(body).map_err(invalid)?;
            let digits = raw.to.strip_prefix('+').unwrap_or("");
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ApiError::InvalidRequest(
                    "to must be an E.164 number (+ and 8 to 15 digits)".into(),
                ));
            }
            if raw.to == INVALID_SMS_RECIPIENT {
                return Err(ApiError::InvalidRecipient(raw.to));
            }
            Self {
                to: raw.to,
                title: None,
                body: raw.body,
                reference: raw.reference,
                status_callback: raw.status_callback,
            }
        } else {
            let raw = RawPush::deserialize(body).map_err(invalid)?;
            if raw.to.trim().is_empty() || raw.to.len() > 4096 {
                return Err(ApiError::InvalidRequest("to must be a device token".into()));
            }
            if raw.to == INVALID_PUSH_RECIPIENT {
                return Err(ApiError::InvalidRecipient(raw.to));
            }
            if raw.title.trim().is_empty() {
                return Err(ApiError::InvalidRequest("title must not be empty".into()));
            }
            Self {
                to: raw.to,
                title: Some(raw.title),
                body: raw.body,
                reference: raw.reference,
                status_callback: raw.status_callback,
            }
        };
        if message.body.trim().is_empty() || message.body.chars().count() > 1600 {
            return Err(ApiError::InvalidRequest(
                "body must be 1 to 1600 characters".into(),
            ));
        }
        if message.reference.trim().is_empty() || message.reference.len() > 255 {
            return Err(ApiError::InvalidRequest(
                "reference must be 1 to 255 characters".into(),
            ));
        }
        if let Some(url) = &message.status_callback
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ApiError::InvalidRequest(
                "status_callback must be an http:// or https:// URL".into(),
            ));
        }
        Ok(message)
    }

    /// The receipt this message earns: `undeliverable` for the bouncing
    /// recipients, else `delivered`.
    pub fn natural_receipt(&self) -> ReceiptStatus {
        if self.to == BOUNCING_SMS_RECIPIENT || self.to == BOUNCING_PUSH_RECIPIENT {
            ReceiptStatus::Undeliverable
        } else {
            ReceiptStatus::Delivered
        }
    }
}

/// The SMS number that is accepted and then reported `undeliverable`.
pub const BOUNCING_SMS_RECIPIENT: &str = "+15005550009";
/// The push token that is accepted and then reported `undeliverable`.
pub const BOUNCING_PUSH_RECIPIENT: &str = "bounce-token";

/// What a delivery receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Delivered,
    Undeliverable,
}

/// An accepted message as the provider lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AcceptedMessage {
    pub id: String,
    pub provider: Provider,
    pub status: &'static str,
    pub to: String,
    pub reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub body: String,
    pub accepted_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sms_needs_an_e164_number_a_body_and_a_reference() {
        let ok = json!({"to": "+4915112345678", "body": "Hi", "reference": "n1"});
        assert!(OutgoingMessage::parse(Provider::SmsPrimary, &ok).is_ok());
        for (field, value) in [
            ("to", json!("015112345678")),
            ("to", json!("+49")),
            ("body", json!("")),
            ("reference", json!("")),
            ("title", json!("not for sms")),
        ] {
            let mut body = ok.clone();
            body[field] = value;
            assert!(matches!(
                OutgoingMessage::parse(Provider::SmsSecondary, &body),
                Err(ApiError::InvalidRequest(_))
            ));
        }
        let mut unreachable = ok.clone();
        unreachable["to"] = json!(INVALID_SMS_RECIPIENT);
        assert!(matches!(
            OutgoingMessage::parse(Provider::SmsPrimary, &unreachable),
            Err(ApiError::InvalidRecipient(_))
        ));
    }

    #[test]
    fn push_needs_a_token_and_a_title() {
        let ok = json!({"to": "tok_1", "title": "T", "body": "B", "reference": "n1"});
        assert_eq!(
            OutgoingMessage::parse(Provider::Push, &ok)
                .unwrap()
                .title
                .as_deref(),
            Some("T")
        );
        let mut no_title = ok.clone();
        no_title.as_object_mut().unwrap().remove("title");
        assert!(OutgoingMessage::parse(Provider::Push, &no_title).is_err());
        let mut invalid = ok.clone();
        invalid["to"] = json!(INVALID_PUSH_RECIPIENT);
        assert!(matches!(
            OutgoingMessage::parse(Provider::Push, &invalid),
            Err(ApiError::InvalidRecipient(_))
        ));
        assert!(Provider::parse("fax").is_err());
    }
}
