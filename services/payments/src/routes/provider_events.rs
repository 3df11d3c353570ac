//! What the provider and the sidecar send: signed webhooks and the cron
//! binding's reconciliation trigger.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use time::OffsetDateTime;
use tracing::instrument;

use super::AppState;
use crate::error::PaymentsError;
use crate::gateway::WebhookEvent;

/// `POST /v1/webhooks/psp`: 200 once applied (or already applied); 400 for
/// a bad signature or body; 5xx makes the provider deliver it again. The
/// signature is checked with bounded work before the body is hashed or parsed
/// (platform-signature).
#[instrument(name = "payments.webhook", skip_all, fields(webhook.id, webhook.type))]
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, PaymentsError> {
    let signature = headers
        .get("psp-signature")
        .and_then(|v| v.to_str().ok())
        // Absent or not text: refused like an empty header.
        .unwrap_or_default();
    state
        .webhook_verifier
        .verify(signature, &body, OffsetDateTime::now_utc().unix_timestamp())?;
    let event: WebhookEvent =
        serde_json::from_slice(&body).map_err(|_| PaymentsError::InvalidField {
            field: "body",
            reason: "not a provider event",
        })?;
    super::payments::plain_text("id", &event.id)?;
    let span = tracing::Span::current();
    span.record("webhook.id", event.id.as_str());
    span.record("webhook.type", event.kind.as_str());
    state.gateway.webhook(event).await?;
    Ok(StatusCode::OK)
}

/// `POST /<binding>`: Dapr's cron input binding fires a reconciliation round.
#[instrument(
    name = "payments.reconcile",
    skip_all,
    fields(resolved, pending, skipped)
)]
pub(crate) async fn reconcile(State(state): State<AppState>) -> Result<StatusCode, PaymentsError> {
    let round = state.reconciler.round().await?;
    let span = tracing::Span::current();
    span.record("resolved", round.resolved);
    span.record("pending", round.pending);
    span.record("skipped", round.skipped);
    if round != Default::default() {
        tracing::info!(
            resolved = round.resolved,
            pending = round.pending,
            skipped = round.skipped,
            "reconciliation round"
        );
    }
    Ok(StatusCode::OK)
}
