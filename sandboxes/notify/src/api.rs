//! Provider endpoints and the control API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::message::Provider;
use crate::receipt::Receipts;
use crate::store::{Admission, ConfigUpdate, Store};

#[derive(Debug, Clone)]
pub struct AppState {
    store: Arc<Mutex<Store>>,
    stopping: watch::Receiver<bool>,
    receipts: Receipts,
}

impl AppState {
    pub fn new(stopping: watch::Receiver<bool>, callback_secret: &str) -> Self {
        Self {
            store: Arc::new(Mutex::new(Store::default())),
            stopping,
            receipts: Receipts::new(callback_secret),
        }
    }

    /// Runs `f` under the lock (never held across an `.await`).
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut store)
    }

    /// Sleeps, but never past the start of a shutdown.
    async fn sleep_unless_stopping(&self, duration: Duration) {
        sandbox_kit::sleep_unless_stopping(&self.stopping, duration).await;
    }
}

/// `POST /{provider}/messages`. In `delay` mode the message is accepted
/// when the request arrives and only the answer waits, as with a provider
/// that is slow to answer: a caller that times out and retries without an
/// `Idempotency-Key` sends it twice.
pub async fn send(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let provider = match Provider::parse(&provider) {
        Ok(provider) => provider,
        Err(e) => return e.into_response(),
    };
    let delay_ms = match state.with_store(|s| s.admit(provider)) {
        Admission::Refuse(error) => {
            tracing::info!(
                notify.provider = provider.name(),
                http.status = error.status_code().as_u16(),
                "refused (sandbox configuration)"
            );
            return error.into_response();
        }
        Admission::Proceed { delay_ms } => delay_ms,
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            state.with_store(|s| s.note_rejected(provider));
            return ApiError::InvalidRequest(format!("the body is not JSON: {e}")).into_response();
        }
    };
    let (answer, receipts) =
        state.with_store(|s| (s.accept(provider, key, &body), s.take_pending()));
    state
        .sleep_unless_stopping(Duration::from_millis(delay_ms))
        .await;
    for receipt in receipts {
        let store = state.clone();
        state.receipts.send(receipt, move |id, status| {
            store.with_store(|s| s.note_receipt_attempt(id, status));
        });
    }
    match answer {
        Ok(answer) => (StatusCode::ACCEPTED, Json(answer)).into_response(),
        Err(error) => error.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct MessageFilter {
    to: Option<String>,
    reference: Option<String>,
}

/// `GET /{provider}/messages?to=&reference=`.
pub async fn list(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Query(filter): Query<MessageFilter>,
) -> Response {
    let provider = match Provider::parse(&provider) {
        Ok(provider) => provider,
        Err(e) => return e.into_response(),
    };
    let data = state
        .with_store(|s| s.messages(provider, filter.to.as_deref(), filter.reference.as_deref()));
    Json(json!({ "data": data })).into_response()
}

pub async fn update_config(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    body: Bytes,
) -> Response {
    let provider = match Provider::parse(&provider) {
        Ok(provider) => provider,
        Err(e) => return e.into_response(),
    };
    let body: &[u8] = if body.is_empty() { b"{}" } else { &body };
    let update: ConfigUpdate = match serde_json::from_slice(body) {
        Ok(update) => update,
        Err(e) => {
            return ApiError::InvalidRequest(format!("invalid body: {e}")).into_response();
        }
    };
    match state.with_store(|s| s.configure(provider, update)) {
        Ok(config) => {
            tracing::info!(
                notify.provider = provider.name(),
                ?config,
                "provider configured"
            );
            Json(config).into_response()
        }
        Err(e) => e.into_response(),
    }
}

pub async fn get_config(State(state): State<AppState>, Path(provider): Path<String>) -> Response {
    match Provider::parse(&provider) {
        Ok(provider) => Json(state.with_store(|s| s.config(provider))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /__sandbox/receipts?reference=`: receipts posted, oldest first.
pub async fn receipts(
    State(state): State<AppState>,
    Query(filter): Query<MessageFilter>,
) -> Response {
    let data = state.with_store(|s| s.receipts(filter.reference.as_deref()));
    Json(json!({ "data": data })).into_response()
}

pub async fn stats(State(state): State<AppState>) -> Response {
    Json(state.with_store(Store::stats)).into_response()
}

pub async fn reset(State(state): State<AppState>) -> Response {
    state.with_store(|s| *s = Store::default());
    tracing::info!("sandbox reset");
    StatusCode::NO_CONTENT.into_response()
}
