//! The provider's objects and the requests that create them, parsed at the
//! boundary so that the store only sees valid values.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationStatus {
    Authorized,
    Captured,
    Voided,
    Declined,
}

#[derive(Debug, Clone, Serialize)]
pub struct Authorization {
    pub id: String,
    pub status: AuthorizationStatus,
    pub amount: i64,
    pub currency: String,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub reference: String,
    pub decline_code: Option<&'static str>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub id: String,
    pub authorization_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: &'static str,
    pub reference: String,
    pub created_at: String,
}

/// What a card number makes the provider do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    Authorize,
    Decline(&'static str),
    ProcessingError,
    /// Authorized, but the answer is held back by `PSP_SLOW_MS`.
    AuthorizeSlowly,
}

impl CardOutcome {
    pub fn of(card_number: &str) -> Self {
        match card_number {
            "4000000000000002" => Self::Decline("generic_decline"),
            "4000000000009995" => Self::Decline("insufficient_funds"),
            "4000000000000119" => Self::ProcessingError,
            "4000000000000341" => Self::AuthorizeSlowly,
            _ => Self::Authorize,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorizationRequest {
    amount: i64,
    currency: String,
    card_number: String,
    reference: String,
    #[serde(default)]
    capture: bool,
}

/// A valid `POST /v1/authorizations` body.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub amount: i64,
    pub currency: String,
    pub card_number: String,
    pub reference: String,
    pub capture: bool,
}

impl AuthorizationRequest {
    pub fn parse(body: &serde_json::Value) -> Result<Self, ApiError> {
        let raw: RawAuthorizationRequest = from_value(body)?;
        let amount = positive_amount(raw.amount)?;
        let currency = currency(&raw.currency)?;
        if raw.card_number.len() != 16 || !raw.card_number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::InvalidRequest(
                "card_number must be 16 digits".into(),
            ));
        }
        let reference = reference(&raw.reference)?;
        Ok(Self {
            amount,
            currency,
            card_number: raw.card_number,
            reference,
            capture: raw.capture,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaptureRequest {
    amount: Option<i64>,
}

/// A valid capture body; without `amount`, whatever is left is captured.
#[derive(Debug, Clone, Copy)]
pub struct CaptureRequest {
    pub amount: Option<i64>,
}

impl CaptureRequest {
    pub fn parse(body: &serde_json::Value) -> Result<Self, ApiError> {
        let raw: RawCaptureRequest = from_value(body)?;
        Ok(Self {
            amount: raw.amount.map(positive_amount).transpose()?,
        })
    }
}

/// A void takes an empty object.
pub fn parse_void(body: &serde_json::Value) -> Result<(), ApiError> {
    match body.as_object() {
        Some(fields) if fields.is_empty() => Ok(()),
        _ => Err(ApiError::InvalidRequest("the body must be {}".into())),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefundRequest {
    authorization_id: String,
    amount: i64,
    reference: String,
}

/// A valid `POST /v1/refunds` body.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub authorization_id: String,
    pub amount: i64,
    pub reference: String,
}

impl RefundRequest {
    pub fn parse(body: &serde_json::Value) -> Result<Self, ApiError> {
        let raw: RawRefundRequest = from_value(body)?;
        if raw.authorization_id.trim().is_empty() {
            return Err(ApiError::InvalidRequest(
                "authorization_id must not be empty".into(),
            ));
        }
        Ok(Self {
            authorization_id: raw.authorization_id,
            amount: positive_amount(raw.amount)?,
            reference: reference(&raw.reference)?,
        })
    }
}

fn from_value<T: serde::de::DeserializeOwned>(body: &serde_json::Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::InvalidRequest(format!("invalid body: {e}")))
}

fn positive_amount(amount: i64) -> Result<i64, ApiError> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(ApiError::InvalidRequest(
            "amount must be a positive integer in minor units".into(),
        ))
    }
}

fn currency(code: &str) -> Result<String, ApiError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code.to_owned())
    } else {
        Err(ApiError::InvalidRequest(
            "currency must be an upper-case ISO 4217 code".into(),
        ))
    }
}

fn reference(value: &str) -> Result<String, ApiError> {
    if value.trim().is_empty() || value.len() > 255 {
        Err(ApiError::InvalidRequest(
            "reference must be 1 to 255 characters".into(),
        ))
    } else {
        Ok(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_cards_choose_the_outcome() {
        assert_eq!(CardOutcome::of("4242424242424242"), CardOutcome::Authorize);
        assert_eq!(
            CardOutcome::of("4000000000000002"),
            CardOutcome::Decline("generic_decline")
        );
        assert_eq!(
            CardOutcome::of("4000000000009995"),
            CardOutcome::Decline("insufficient_funds")
        );
        assert_eq!(
            CardOutcome::of("4000000000000119"),
            CardOutcome::ProcessingError
        );
        assert_eq!(
            CardOutcome::of("4000000000000341"),
            CardOutcome::AuthorizeSlowly
        );
        assert_eq!(CardOutcome::of("5555555555554444"), CardOutcome::Authorize);
    }

    #[test]
    fn malformed_authorizations_are_refused() {
        let ok =
            json!({"amount":100,"currency":"EUR","card_number":"4242424242424242","reference":"r"});
        assert!(AuthorizationRequest::parse(&ok).is_ok());
        for (field, value) in [
            ("amount", json!(0)),
            ("amount", json!(-5)),
            ("amount", json!(1.5)),
            ("amount", json!("100")),
            ("currency", json!("eur")),
            ("currency", json!("EURO")),
            ("card_number", json!("4242")),
            ("card_number", json!("424242424242424x")),
            ("reference", json!("")),
            ("capture", json!("yes")),
            ("unexpected", json!(1)),
        ] {
            let mut body = ok.clone();
            body[field] = value;
            assert!(
                AuthorizationRequest::parse(&body).is_err(),
                "{field} should be refused"
            );
        }
    }

    #[test]
    fn capture_amount_is_optional_but_positive() {
        assert_eq!(CaptureRequest::parse(&json!({})).unwrap().amount, None);
        assert_eq!(
            CaptureRequest::parse(&json!({"amount":5})).unwrap().amount,
            Some(5)
        );
        assert!(CaptureRequest::parse(&json!({"amount":0})).is_err());
        assert!(parse_void(&json!({})).is_ok());
        assert!(parse_void(&json!({"x":1})).is_err());
    }
}
