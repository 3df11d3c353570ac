//! Subscribed event handlers. Each answers Dapr SUCCESS, RETRY or DROP:
//! * malformed or invalid events can never succeed → DROP (Dapr moves them to
//!   the subscription's dead-letter topic);
//! * database trouble is transient → RETRY (Dapr redelivers per the
//!   Resiliency policy, then dead-letters);
//! * events already in the inbox → SUCCESS without a second effect.

use axum::body::Bytes;
use axum::extract::State;
use platform_dapr::{CloudEvent, TopicResponse};
use serde::Deserialize;
use tracing::instrument;

use super::AppState;
use crate::inbox::{self, Claim, EventMeta};

const PAYMENTS_TOPIC: &str = "payments";

/// `payments.payment.created` as this consumer reads it (tolerant reader:
/// unknown fields are ignored).
#[derive(Debug, Deserialize)]
struct PaymentCreated {
    payment_id: String,
    amount: i64,
    currency: String,
}

impl PaymentCreated {
    fn validate(&self) -> Result<(), &'static str> {
        if self.payment_id.is_empty() {
            return Err("payment_id is empty");
        }
        if self.amount <= 0 {
            return Err("amount must be positive");
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency must be an ISO 4217 code");
        }
        Ok(())
    }
}

#[instrument(name = "events.payments", skip_all, fields(event.id, event.type))]
pub(crate) async fn payments(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    let response = handle_payment_event(&state, &body).await;
    metrics::counter!("events_handled_total", "topic" => PAYMENTS_TOPIC, "outcome" => response.as_str()).increment(1);
    response
}

async fn handle_payment_event(state: &AppState, body: &[u8]) -> TopicResponse {
    let event: CloudEvent<serde_json::Value> = match serde_json::from_slice(body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, "dropping an event that is not a CloudEvent");
            return TopicResponse::Drop;
        }
    };
    let span = tracing::Span::current();
    span.record("event.id", event.id.as_str());
    span.record("event.type", event.event_type.as_str());

    match event.event_type.as_str() {
        "payments.payment.created" => {
            let data = match serde_json::from_value::<PaymentCreated>(event.data.clone()) {
                Ok(data) => data,
                Err(error) => {
                    tracing::warn!(%error, "dropping a payment event whose data does not match its schema");
                    return TopicResponse::Drop;
                }
            };
            if let Err(reason) = data.validate() {
                tracing::warn!(reason, "dropping an invalid payment event");
                return TopicResponse::Drop;
            }
            record_once(state, &event, |_tx| async { Ok(()) }).await
        }
        other => {
            // Producers may add event types before consumers know them.
            tracing::debug!(event.type = other, "ignoring an event type this service does not consume");
            TopicResponse::Success
        }
    }
}

/// Claims the event in the inbox and applies `effect` in the same transaction.
async fn record_once<F, Fut>(
    state: &AppState,
    event: &CloudEvent<serde_json::Value>,
    effect: F,
) -> TopicResponse
where
    F: FnOnce(&mut sqlx::PgConnection) -> Fut,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let meta = EventMeta {
        source: &event.source,
        id: &event.id,
        event_type: &event.event_type,
        topic: event.topic.as_deref().unwrap_or(PAYMENTS_TOPIC),
        subject: event.subject.as_deref(),
    };
    let result = async {
        match inbox::claim(&state.pool, &meta, state.lock_timeout_ms).await? {
            Claim::Duplicate => Ok(false),
            Claim::New(mut tx) => {
                effect(&mut tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
        }
    }
    .await;
    match result {
        Ok(true) => {
            tracing::info!(event.source = %event.source, "event applied");
            TopicResponse::Success
        }
        Ok(false) => {
            tracing::info!(event.source = %event.source, "duplicate event ignored");
            TopicResponse::Success
        }
        Err(error) => {
            tracing::warn!(%error, "event not applied, asking for redelivery");
            TopicResponse::Retry
        }
    }
}
