//! Calls to payments through the sidecar (service invocation of app
//! `payments`, governed by dapr-config/resiliency/bookings.yaml), with an
//! access token for audience `payments` that bookings gets from auth by the
//! client-credentials grant (invoking app `auth` through the same sidecar)
//! and reuses until shortly before it expires.
//!
//! Every call carries an `Idempotency-Key` derived from what the saga
//! decided (the booking id for its payment, the command id for a
//! compensation), so a call repeated after a crash or a lost answer has one
//! effect at payments.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_dapr::{InvokeError, InvokeRequest, Sidecar};
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::settings::PaymentsSettings;

/// Why a call to payments (or to auth for its token) did not work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PaymentsError {
    /// Not reached, timed out, or answered 5xx/429: try again later.
    #[error("{0}")]
    Unavailable(String),
    /// Refused (4xx): the same call will not succeed.
    #[error("{0}")]
    Refused(String),
}

/// What bookings keeps of a payment it created.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedPayment {
    pub id: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

#[derive(Debug)]
struct CachedToken {
    value: String,
    renew_at: Instant,
}

#[derive(Debug, Clone)]
pub struct PaymentsClient {
    sidecar: Sidecar,
    settings: Arc<PaymentsSettings>,
    token: Arc<Mutex<Option<CachedToken>>>,
}

impl PaymentsClient {
    pub fn new(sidecar: &Sidecar, settings: PaymentsSettings) -> Self {
        Self {
            sidecar: sidecar.with_timeout(settings.timeout()),
            settings: Arc::new(settings),
            token: Arc::new(Mutex::new(None)),
        }
    }

    /// Creates the payment of a booking (`customer_reference` = the
    /// participant); the booking id is the Idempotency-Key.
    pub async fn create(
        &self,
        idempotency_key: &str,
        amount: i64,
        currency: &str,
        customer_reference: &str,
    ) -> Result<CreatedPayment, PaymentsError> {
        let body = json!({
            "amount": amount,
            "currency": currency,
            "customer_reference": customer_reference,
        });
        let answer = self
            .call(Method::POST, "/v1/payments", idempotency_key, &body)
            .await?;
        serde_json::from_value(answer)
            .map_err(|e| PaymentsError::Refused(format!("unexpected payment body: {e}")))
    }

    /// Cancels an open payment. A payment that can no longer be canceled
    /// (already failed, canceled or succeeded) answers 409: the saga learns
    /// what happened from payments' events, so that is not an error here.
    pub async fn cancel(
        &self,
        idempotency_key: &str,
        payment_id: &str,
    ) -> Result<(), PaymentsError> {
        let path = format!("/v1/payments/{payment_id}/cancel");
        match self
            .call(Method::POST, &path, idempotency_key, &json!({}))
            .await
        {
            Ok(_) => Ok(()),
            Err(PaymentsError::Refused(why)) if why.starts_with("409") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Confirms a booking's payment with the member's card: bookings
    /// created the payment, so only bookings may confirm it (payments'
    /// ownership rule, ADR 0028). Returns payments' answer (the payment).
    pub async fn confirm(
        &self,
        idempotency_key: &str,
        payment_id: &str,
        card_number: &str,
    ) -> Result<Value, PaymentsError> {
        let path = format!("/v1/payments/{payment_id}/confirm");
        self.call(
            Method::POST,
            &path,
            idempotency_key,
            &json!({ "card_number": card_number }),
        )
        .await
    }

    pub async fn refund(
        &self,
        idempotency_key: &str,
        payment_id: &str,
        amount: i64,
    ) -> Result<(), PaymentsError> {
        let path = format!("/v1/payments/{payment_id}/refunds");
        self.call(
            Method::POST,
            &path,
            idempotency_key,
            &json!({ "amount": amount }),
        )
        .await
        .map(|_| ())
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: &str,
        body: &Value,
    ) -> Result<Value, PaymentsError> {
        let token = self.token().await?;
        let key = HeaderValue::from_str(idempotency_key)
            .map_err(|e| PaymentsError::Refused(e.to_string()))?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| PaymentsError::Refused(e.to_string()))?;
        let request = InvokeRequest::new(method, path)
            .json(serde_json::to_vec(body).unwrap_or_default())
            .header(HeaderName::from_static("idempotency-key"), key)
            .header(reqwest::header::AUTHORIZATION, bearer);
        let answer = self
            .sidecar
            .invoke(&self.settings.app_id, request)
            .await
            .map_err(invoke_error)?;
        if answer.status == StatusCode::UNAUTHORIZED {
            // A key rotation or revocation: the next call fetches a new token.
            *self.token.lock().await = None;
        }
        classify(answer.status, &answer.body)?;
        Ok(serde_json::from_slice(&answer.body).unwrap_or(Value::Null))
    }

    /// A valid token, fetched from auth when there is none or it is about
    /// to expire. One fetch at a time: concurrent callers wait for it.
    async fn token(&self) -> Result<String, PaymentsError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(token.value.clone());
        }
        let form = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&audience=payments&scope=payments%3Aread%20payments%3Awrite",
            percent(&self.settings.client_id),
            percent(self.settings.client_secret.expose_secret()),
        );
        let request = InvokeRequest::new(Method::POST, "/oauth2/token")
            .json(form.into_bytes())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        let answer = self
            .sidecar
            .invoke(&self.settings.auth_app_id, request)
            .await
            .map_err(invoke_error)?;
        classify(answer.status, &answer.body).map_err(|e| match e {
            PaymentsError::Refused(why) => PaymentsError::Refused(format!("auth: {why}")),
            other => other,
        })?;
        let token: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| PaymentsError::Refused(format!("auth's token answer: {e}")))?;
        // Renewed at 80% of its life, so a call never carries a token that
        // expires on the way.
        let life = Duration::from_secs(token.expires_in.saturating_mul(4) / 5);
        *cached = Some(CachedToken {
            value: token.access_token.clone(),
            renew_at: Instant::now() + life,
        });
        Ok(token.access_token)
    }
}

fn invoke_error(e: InvokeError) -> PaymentsError {
    PaymentsError::Unavailable(e.to_string())
}

/// 2xx is fine; 5xx, 429 and daprd's own failures are transient; other 4xx
/// are refusals (the status first, so callers can tell which).
fn classify(status: StatusCode, body: &[u8]) -> Result<(), PaymentsError> {
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(PaymentsError::Unavailable(format!(
            "{} {text}",
            status.as_u16()
        )))
    } else {
        Err(PaymentsError::Refused(format!(
            "{} {text}",
            status.as_u16()
        )))
    }
}

/// Form-urlencodes one value (RFC 3986 unreserved characters kept).
fn percent(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(percent("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(percent("bookings"), "bookings");
    }

    #[test]
    fn refusals_and_outages_are_told_apart() {
        assert!(classify(StatusCode::CREATED, b"").is_ok());
        assert!(matches!(
            classify(StatusCode::CONFLICT, b"{}"),
            Err(PaymentsError::Refused(why)) if why.starts_with("409")
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, b""),
            Err(PaymentsError::Unavailable(_))
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, b""),
            Err(PaymentsError::Unavailable(_))
        ));
    }
}
