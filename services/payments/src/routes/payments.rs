//! Create and read payments.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform_dapr::{OutboxEvent, StateOperation};
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::instrument;

use super::AppState;
use crate::domain::{Currency, Money, Payment, PaymentCreated, PaymentId, PaymentStatus};
use crate::error::PaymentsError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePayment {
    amount: i64,
    currency: String,
    customer_reference: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct PaymentBody {
    id: PaymentId,
    amount: i64,
    currency: Currency,
    customer_reference: String,
    status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<Payment> for PaymentBody {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id,
            amount: p.money.amount(),
            currency: p.money.currency(),
            customer_reference: p.customer_reference,
            status: p.status,
            created_at: p.created_at,
        }
    }
}

const MAX_REFERENCE_LEN: usize = 128;

/// `POST /v1/payments`: validates, then saves the payment and publishes
/// `payments.payment.created` in one outbox transaction.
#[instrument(name = "payments.create", skip_all, fields(payment.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreatePayment>,
) -> Result<(StatusCode, Json<PaymentBody>), PaymentsError> {
    let money = Money::new(body.amount, Currency::parse(&body.currency)?)?;
    let reference = body.customer_reference.trim();
    if reference.is_empty() || reference.len() > MAX_REFERENCE_LEN {
        return Err(PaymentsError::InvalidField {
            field: "customer_reference",
            reason: "must be 1 to 128 characters",
        });
    }
    let payment = Payment::create(money, reference.to_owned(), OffsetDateTime::now_utc());
    tracing::Span::current().record("payment.id", tracing::field::display(payment.id));

    let value = serde_json::to_vec(&payment).map_err(|e| PaymentsError::Internal(Box::new(e)))?;
    let event = serde_json::to_vec(&payment.created_event())
        .map_err(|e| PaymentsError::Internal(Box::new(e)))?;
    let operations = StateOperation::upsert_with_event(
        payment.id.state_key(),
        value,
        None,
        OutboxEvent {
            event_type: PaymentCreated::TYPE.to_owned(),
            subject: payment.id.to_string(),
            data: event,
        },
    );
    state
        .sidecar
        .execute_transaction(&state.state_store, operations.into())
        .await?;
    tracing::info!(payment.id = %payment.id, payment.currency = %payment.money.currency(), "payment created");
    Ok((StatusCode::CREATED, Json(payment.into())))
}

/// `GET /v1/payments/{id}`.
#[instrument(name = "payments.get", skip_all, fields(payment.id = %id))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PaymentBody>, PaymentsError> {
    let id = PaymentId::parse(&id).ok_or(PaymentsError::NotFound)?;
    let entry = state
        .sidecar
        .get_state(&state.state_store, &id.state_key())
        .await?
        .ok_or(PaymentsError::NotFound)?;
    let payment: Payment =
        serde_json::from_slice(&entry.value).map_err(|e| PaymentsError::Internal(Box::new(e)))?;
    Ok(Json(payment.into()))
}
