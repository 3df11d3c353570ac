//! The provider API (`/v1`): every POST goes through [`post`], which applies
//! latency, failure injection and idempotency around the effect.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, json_response};
use crate::state::AppState;
use crate::store::{InjectedFailure, Outcome, Replay, Store};

const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub async fn create_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post(&state, "/v1/authorizations", &headers, &body, |s, b| {
        s.authorize(b)
    })
    .await
}

pub async fn capture(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/authorizations/{id}/capture");
    post(&state, &path, &headers, &body, |s, b| s.capture(&id, b)).await
}

pub async fn void(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/v1/authorizations/{id}/void");
    post(&state, &path, &headers, &body, |s, b| s.void(&id, b)).await
}

pub async fn create_refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    post(&state, "/v1/refunds", &headers, &body, |s, b| s.refund(b)).await
}

#[derive(Debug, Deserialize)]
pub struct ByReference {
    reference: Option<String>,
}

pub async fn get_authorization(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    count_and_wait(&state).await;
    state.with_store(|s| match s.authorization(&id) {
        Some(a) => Json(a).into_response(),
        None => ApiError::NotFound(format!("authorization {id}")).into_response(),
    })
}

pub async fn list_authorizations(
    State(state): State<AppState>,
    Query(query): Query<ByReference>,
) -> Response {
    count_and_wait(&state).await;
    state
        .with_store(|s| Json(json!({ "data": s.authorizations(query.reference.as_deref()) })))
        .into_response()
}

pub async fn get_refund(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    count_and_wait(&state).await;
    state.with_store(|s| match s.refund_by_id(&id) {
        Some(r) => Json(r).into_response(),
        None => ApiError::NotFound(format!("refund {id}")).into_response(),
    })
}

pub async fn list_refunds(
    State(state): State<AppState>,
    Query(query): Query<ByReference>,
) -> Response {
    count_and_wait(&state).await;
    state
        .with_store(|s| Json(json!({ "data": s.refunds(query.reference.as_deref()) })))
        .into_response()
}

/// Counts the request and applies the configured latency (every endpoint).
async fn count_and_wait(state: &AppState) {
    let latency = state.with_store(|s| {
        s.stats.requests += 1;
        s.config.latency_ms
    });
    state
        .sleep_unless_stopping(Duration::from_millis(latency))
        .await;
}

/// What the failure injection decided for one POST.
enum Injection {
    None,
    Fail(StatusCode),
}

/// The shared life of a POST: latency, `Idempotency-Key`, injected failure,
/// then idempotency check + effect + record under one lock, then webhooks,
/// then (for the slow card or `timeout_next`) a held-back answer. The answer
/// is recorded before it is held back, so a retry with the same key gets it
/// at once.
async fn post(
    state: &AppState,
    endpoint: &str,
    headers: &HeaderMap,
    raw_body: &Bytes,
    effect: impl FnOnce(&mut Store, &Value) -> Outcome,
) -> Response {
    count_and_wait(state).await;

    let Some(key) = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .map(str::to_owned)
    else {
        return ApiError::IdempotencyKeyMissing.into_response();
    };

    let injection = state.with_store(|s| {
        let config = &mut s.config;
        if config.fail_next > 0 {
            config.fail_next -= 1;
        } else if !(config.failure_rate > 0.0 && random_fraction() < config.failure_rate) {
            return Injection::None;
        }
        s.stats.failures_injected += 1;
        Injection::Fail(
            StatusCode::from_u16(s.config.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        )
    });
    if let Injection::Fail(status) = injection {
        let reference = serde_json::from_slice::<Value>(raw_body)
            .ok()
            .and_then(|b| {
                b.get("reference")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        state.with_store(|s| {
            s.record_injected(InjectedFailure {
                endpoint: endpoint.to_owned(),
                reference,
                status: status.as_u16(),
            });
        });
        tracing::info!(
            psp.endpoint = endpoint,
            http.status = status.as_u16(),
            "injected failure"
        );
        return ApiError::Injected { status }.into_response();
    }

    let body: Value = match serde_json::from_slice(raw_body) {
        Ok(body) => body,
        Err(e) => {
            return ApiError::InvalidRequest(format!("the body is not JSON: {e}")).into_response();
        }
    };

    let result = state.with_store(|s| {
        match s.check_idempotency(endpoint, &key, &body)? {
            Replay::Same(status, bytes) => return Ok((status, bytes, Vec::new(), false)),
            Replay::New => {}
        }
        let outcome = effect(s, &body);
        let bytes = Arc::new(outcome.body.to_string().into_bytes());
        if outcome.record {
            s.remember(endpoint, &key, body, outcome.status, Arc::clone(&bytes));
        }
        let mut hold_back = outcome.slow;
        if s.config.timeout_next > 0 && !outcome.status.is_server_error() {
            s.config.timeout_next -= 1;
            s.stats.timeouts_injected += 1;
            hold_back = true;
        }
        Ok::<_, ApiError>((outcome.status, bytes, outcome.events, hold_back))
    });
    let (status, bytes, events, hold_back) = match result {
        Ok(parts) => parts,
        Err(error) => return error.into_response(),
    };
    state.send_events(events);
    if hold_back {
        let slow = Duration::from_millis(state.with_store(|s| s.config.slow_ms));
        tracing::info!(
            psp.endpoint = endpoint,
            slow_ms = slow.as_millis(),
            "holding the answer back"
        );
        state.sleep_unless_stopping(slow).await;
    }
    json_response(status, bytes.as_ref().clone())
}

/// A uniformly distributed number in [0, 1) from the system's randomness.
fn random_fraction() -> f64 {
    // The low 53 bits of a v4 UUID are random (its version and variant bits
    // are higher up); 53 bits is the precision of an f64 mantissa.
    let bits = uuid::Uuid::new_v4().as_u128() & ((1u128 << 53) - 1);
    bits as f64 / (1u64 << 53) as f64
}
