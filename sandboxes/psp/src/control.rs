//! The control API (`/__sandbox`), for tests and benchmarks only: failure
//! injection, effect counters, reset, webhook replays.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::ConfigUpdate;

pub async fn update_config(State(state): State<AppState>, body: Bytes) -> Response {
    let update: ConfigUpdate = match parse(&body) {
        Ok(update) => update,
        Err(e) => return e.into_response(),
    };
    let result = state.with_store(|s| {
        let next = update.apply(&s.config)?;
        s.config = next.clone();
        Ok::<_, ApiError>(next)
    });
    match result {
        Ok(config) => {
            tracing::info!(?config, "sandbox configured");
            Json(config).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn get_config(State(state): State<AppState>) -> Response {
    Json(state.config()).into_response()
}

pub async fn stats(State(state): State<AppState>) -> Response {
    Json(state.with_store(|s| s.stats.clone())).into_response()
}

#[derive(Debug, Deserialize)]
pub struct FailuresQuery {
    reference_prefix: Option<String>,
}

/// `GET /__sandbox/failures[?reference_prefix=]`: the requests answered with
/// an injected failure (the last 10,000), oldest first.
pub async fn failures(
    State(state): State<AppState>,
    Query(query): Query<FailuresQuery>,
) -> Response {
    state
        .with_store(|s| {
            Json(json!({ "data": s.injected_failures(query.reference_prefix.as_deref()) }))
        })
        .into_response()
}

pub async fn reset(State(state): State<AppState>) -> Response {
    state.reset();
    tracing::info!("sandbox reset");
    StatusCode::NO_CONTENT.into_response()
}

pub async fn list_webhooks(State(state): State<AppState>) -> Response {
    Json(state.with_store(|s| s.event_deliveries())).into_response()
}

pub async fn resend_webhook(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Response {
    let Some(event) = state.with_store(|s| s.event(&event_id)) else {
        return ApiError::NotFound(format!("event {event_id}")).into_response();
    };
    if state.config().webhook_url.is_none() {
        return ApiError::WebhookUrlMissing.into_response();
    }
    let id = event.id.clone();
    state.send_events(vec![event]);
    (StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitRequest {
    #[serde(rename = "type")]
    kind: String,
    data: Value,
}

pub async fn emit_webhook(State(state): State<AppState>, body: Bytes) -> Response {
    let request: EmitRequest = match parse(&body) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    if request.kind.trim().is_empty() {
        return ApiError::InvalidRequest("type must not be empty".into()).into_response();
    }
    if state.config().webhook_url.is_none() {
        return ApiError::WebhookUrlMissing.into_response();
    }
    let event = state.with_store(|s| s.record_event(&request.kind, request.data));
    let sent: Value = serde_json::from_slice(&event.body).unwrap_or(Value::Null);
    state.send_events(vec![event]);
    (StatusCode::ACCEPTED, Json(sent)).into_response()
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.is_empty() { b"{}" } else { body };
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidRequest(format!("invalid body: {e}")))
}
