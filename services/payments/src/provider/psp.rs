//! The PSP adapter (contract: docs in sandboxes/psp), called through the Dapr
//! sidecar: service invocation of the `HTTPEndpoint` resource that names the
//! provider (components/local/psp.yaml), with `platform_dapr::Sidecar::invoke`.
//! Timeouts, retries of retriable failures and the circuit breaker are the
//! sidecar's, declared in dapr-config/resiliency/payments.yaml (ADR 0015).

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use platform_dapr::{InvokeError, InvokeRequest, InvokeResponse, Sidecar};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tracing::instrument;

use super::{
    AuthorizeRequest, AuthorizeResult, PaymentProvider, ProviderAuthorization,
    ProviderAuthorizationStatus, ProviderError, ProviderRefund,
};

#[derive(Debug, Clone)]
pub struct PspProvider {
    sidecar: Sidecar,
    /// The name of the HTTPEndpoint resource.
    endpoint: String,
}

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

#[derive(Debug, Deserialize)]
struct WireAuthorization {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    captured_amount: i64,
    reference: String,
    #[serde(default)]
    decline_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireRefund {
    id: String,
    authorization_id: String,
    amount: i64,
    currency: String,
    status: String,
    reference: String,
}

#[derive(Debug, Deserialize)]
struct WireList<T> {
    data: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    error: WireError,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl TryFrom<WireAuthorization> for ProviderAuthorization {
    type Error = ProviderError;
    fn try_from(w: WireAuthorization) -> Result<Self, ProviderError> {
        let status = match w.status.as_str() {
            "authorized" => ProviderAuthorizationStatus::Authorized,
            "captured" => ProviderAuthorizationStatus::Captured,
            "voided" => ProviderAuthorizationStatus::Voided,
            "declined" => ProviderAuthorizationStatus::Declined,
            other => {
                return Err(ProviderError::Protocol(format!(
                    "unknown authorization status {other:?}"
                )));
            }
        };
        Ok(Self {
            id: w.id,
            status,
            amount: w.amount,
            currency: w.currency,
            captured_amount: w.captured_amount,
            reference: w.reference,
            decline_code: w.decline_code,
        })
    }
}

impl From<WireRefund> for ProviderRefund {
    fn from(w: WireRefund) -> Self {
        Self {
            succeeded: w.status == "succeeded",
            id: w.id,
            authorization_id: w.authorization_id,
            amount: w.amount,
            currency: w.currency,
            reference: w.reference,
        }
    }
}

/// Parses a provider object from a webhook or an API answer.
pub fn parse_authorization(
    value: serde_json::Value,
) -> Result<ProviderAuthorization, ProviderError> {
    serde_json::from_value::<WireAuthorization>(value)
        .map_err(|e| ProviderError::Protocol(e.to_string()))?
        .try_into()
}

pub fn parse_refund(value: serde_json::Value) -> Result<ProviderRefund, ProviderError> {
    serde_json::from_value::<WireRefund>(value)
        .map(Into::into)
        .map_err(|e| ProviderError::Protocol(e.to_string()))
}

impl PspProvider {
    /// `endpoint` is the name of the HTTPEndpoint resource; `timeout` caps a
    /// call on our side and is longer than the sidecar's own timeout with
    /// its retries.
    pub fn new(sidecar: &Sidecar, endpoint: String, timeout: Duration) -> Self {
        Self {
            sidecar: sidecar.with_timeout(timeout),
            endpoint,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<InvokeResponse, ProviderError> {
        let mut request = InvokeRequest::new(method.clone(), path);
        if let Some(key) = idempotency_key {
            let key = HeaderValue::from_str(key)
                .map_err(|e| ProviderError::NotSent(format!("idempotency key: {e}")))?;
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(body) = body {
            let body =
                serde_json::to_vec(&body).map_err(|e| ProviderError::NotSent(e.to_string()))?;
            request = request.json(body);
        }
        let answer = self
            .sidecar
            .invoke(&self.endpoint, request)
            .await
            .map_err(|e| match e {
                InvokeError::NotSent(_) => ProviderError::NotSent(e.to_string()),
                InvokeError::Interrupted(e) if method == Method::GET => {
                    ProviderError::Unavailable(e)
                }
                // The request may have reached the provider.
                InvokeError::Interrupted(e) => ProviderError::Unknown(e),
            })?;
        let status = answer.status;
        if status.is_success()
            || status == StatusCode::PAYMENT_REQUIRED
            || status == StatusCode::NOT_FOUND && method == Method::GET
        {
            return Ok(answer);
        }
        Err(classify_error(&method, &answer))
    }

    fn parse<T: serde::de::DeserializeOwned>(answer: &InvokeResponse) -> Result<T, ProviderError> {
        serde_json::from_slice(&answer.body).map_err(|e| {
            ProviderError::Protocol(format!("{e}: {}", String::from_utf8_lossy(&answer.body)))
        })
    }

    #[instrument(name = "psp.authorize", skip_all, fields(provider.reference = %request.reference))]
    async fn do_authorize(
        &self,
        request: AuthorizeRequest,
    ) -> Result<AuthorizeResult, ProviderError> {
        let body = json!({
            "amount": request.amount,
            "currency": request.currency,
            "card_number": request.card_number,
            "reference": request.reference,
            "capture": request.capture,
        });
        let answer = self
            .call(
                Method::POST,
                "/v1/authorizations",
                Some(&request.reference),
                Some(body),
            )
            .await?;
        if answer.status == StatusCode::PAYMENT_REQUIRED {
            let error: WireErrorBody = Self::parse(&answer)?;
            return Ok(AuthorizeResult::Declined {
                code: error.error.code.unwrap_or(error.error.kind),
            });
        }
        let auth: WireAuthorization = Self::parse(&answer)?;
        Ok(AuthorizeResult::Authorization(auth.try_into()?))
    }

    async fn post_authorization(
        &self,
        path: String,
        key: &str,
        body: serde_json::Value,
    ) -> Result<ProviderAuthorization, ProviderError> {
        let answer = self
            .call(Method::POST, &path, Some(key), Some(body))
            .await?;
        if answer.status == StatusCode::PAYMENT_REQUIRED {
            return Err(classify_error(&Method::POST, &answer));
        }
        Self::parse::<WireAuthorization>(&answer)?.try_into()
    }

    async fn get_optional<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<T>, ProviderError> {
        let answer = self.call(Method::GET, path, None, None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::parse(&answer).map(Some)
    }
}

/// Maps a failed answer: daprd's own errors (circuit open, no connection,
/// timeout) or the provider's.
fn classify_error(method: &Method, answer: &InvokeResponse) -> ProviderError {
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    if let Some(dapr) = answer.sidecar_error() {
        let message = dapr.message.to_lowercase();
        let certainly_not_sent = message.contains("circuit breaker is open")
            || message.contains("too many requests")
            || message.contains("connection refused")
            || message.contains("no such host");
        return if certainly_not_sent {
            ProviderError::NotSent(format!("{}: {}", dapr.error_code, dapr.message))
        } else if *method == Method::GET {
            ProviderError::Unavailable(format!("{}: {}", dapr.error_code, dapr.message))
        } else {
            ProviderError::Unknown(format!("{}: {}", dapr.error_code, dapr.message))
        };
    }
    let status = answer.status.as_u16();
    match serde_json::from_slice::<WireErrorBody>(&answer.body) {
        // The provider documents its 5xx, 429 and 408 as "nothing happened"
        // (not stored under the idempotency key either).
        Ok(e) if answer.status.is_server_error() || status == 429 || status == 408 => {
            ProviderError::Unavailable(format!("provider answered {status} {}", e.error.kind))
        }
        Ok(e) => ProviderError::Rejected {
            status,
            code: e.error.code.unwrap_or(e.error.kind),
            message: e.error.message.unwrap_or_default(),
        },
        // A gateway/timeout status without a provider body: it may have
        // been processed.
        Err(_) if *method != Method::GET => {
            ProviderError::Unknown(format!("answered {status}: {body}"))
        }
        Err(_) => ProviderError::Unavailable(format!("answered {status}: {body}")),
    }
}

impl PaymentProvider for PspProvider {
    fn authorize(
        &self,
        request: AuthorizeRequest,
    ) -> BoxFuture<'_, Result<AuthorizeResult, ProviderError>> {
        self.do_authorize(request).boxed()
    }

    fn capture<'a>(
        &'a self,
        authorization_id: &'a str,
        amount: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<ProviderAuthorization, ProviderError>> {
        self.post_authorization(
            format!("/v1/authorizations/{authorization_id}/capture"),
            key,
            json!({ "amount": amount }),
        )
        .boxed()
    }

    fn void<'a>(
        &'a self,
        authorization_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<ProviderAuthorization, ProviderError>> {
        self.post_authorization(
            format!("/v1/authorizations/{authorization_id}/void"),
            key,
            json!({}),
        )
        .boxed()
    }

    fn refund<'a>(
        &'a self,
        authorization_id: &'a str,
        amount: i64,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<ProviderRefund, ProviderError>> {
        async move {
            let body = json!({
                "authorization_id": authorization_id,
                "amount": amount,
                "reference": reference,
            });
            let answer = self
                .call(Method::POST, "/v1/refunds", Some(reference), Some(body))
                .await?;
            if answer.status == StatusCode::PAYMENT_REQUIRED {
                return Err(classify_error(&Method::POST, &answer));
            }
            Ok(Self::parse::<WireRefund>(&answer)?.into())
        }
        .boxed()
    }

    fn get_authorization<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderAuthorization>, ProviderError>> {
        async move {
            self.get_optional::<WireAuthorization>(&format!("/v1/authorizations/{id}"))
                .await?
                .map(TryInto::try_into)
                .transpose()
        }
        .boxed()
    }

    fn find_authorization<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderAuthorization>, ProviderError>> {
        async move {
            let list = self
                .get_optional::<WireList<WireAuthorization>>(&format!(
                    "/v1/authorizations?reference={}",
                    encode(reference)
                ))
                .await?;
            list.and_then(|l| l.data.into_iter().next())
                .map(TryInto::try_into)
                .transpose()
        }
        .boxed()
    }

    fn find_refund<'a>(
        &'a self,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<Option<ProviderRefund>, ProviderError>> {
        async move {
            let list = self
                .get_optional::<WireList<WireRefund>>(&format!(
                    "/v1/refunds?reference={}",
                    encode(reference)
                ))
                .await?;
            Ok(list.and_then(|l| l.data.into_iter().next()).map(Into::into))
        }
        .boxed()
    }
}

/// Our references are `<uuid>.<a|r><n>`: only unreserved characters, but
/// encode anyway so that a foreign reference cannot break the query.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> InvokeResponse {
        InvokeResponse {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn errors_are_classified_by_who_answered() {
        let open = answer(
            500,
            r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"fail to invoke, id: psp, err: circuit breaker is open"}"#,
        );
        assert!(matches!(
            classify_error(&Method::POST, &open),
            ProviderError::NotSent(_)
        ));
        let timeout = answer(
            500,
            r#"{"errorCode":"ERR_DIRECT_INVOKE","message":"context deadline exceeded"}"#,
        );
        assert!(matches!(
            classify_error(&Method::POST, &timeout),
            ProviderError::Unknown(_)
        ));
        assert!(matches!(
            classify_error(&Method::GET, &timeout),
            ProviderError::Unavailable(_)
        ));
        let psp500 = answer(
            500,
            r#"{"error":{"type":"processing_error","code":"processing_error","message":"x"}}"#,
        );
        assert!(matches!(
            classify_error(&Method::POST, &psp500),
            ProviderError::Unavailable(_)
        ));
        let reused = answer(
            422,
            r#"{"error":{"type":"invalid_request","code":"idempotency_key_reused","message":"x"}}"#,
        );
        assert!(matches!(
            classify_error(&Method::POST, &reused),
            ProviderError::Rejected { status: 422, .. }
        ));
        let gateway = answer(504, "upstream timed out");
        assert!(matches!(
            classify_error(&Method::POST, &gateway),
            ProviderError::Unknown(_)
        ));
    }

    #[test]
    fn references_are_query_safe() {
        assert_eq!(encode("a b&c"), "a+b%26c");
    }
}
