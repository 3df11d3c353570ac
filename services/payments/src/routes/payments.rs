//! Create, confirm, capture, cancel, refund and read payments.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform_auth_token::{AccessClaims, Authenticated};
use platform_money::{Currency, Money};
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::instrument;

use super::AppState;
use crate::domain::{
    AttemptStatus, CaptureMethod, Payment, PaymentId, PaymentStatus, ProviderReference,
    RefundStatus, accepted_currency,
};
use crate::error::PaymentsError;
use crate::gateway::{Created, Outcome};
use crate::idempotency::IdempotencyScope;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreatePayment {
    amount: i64,
    currency: String,
    customer_reference: String,
    #[serde(default)]
    capture_method: CaptureMethod,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmPayment {
    card_number: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AmountBody {
    #[serde(default)]
    amount: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmptyBody {}

#[derive(Debug, Serialize)]
pub(crate) struct AttemptBody {
    id: String,
    status: AttemptStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct RefundBody {
    id: String,
    payment_id: PaymentId,
    amount: i64,
    currency: Currency,
    status: RefundStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, Serialize)]
pub(crate) struct PaymentBody {
    id: PaymentId,
    amount: i64,
    currency: Currency,
    customer_reference: String,
    status: PaymentStatus,
    capture_method: CaptureMethod,
    amount_authorized: i64,
    amount_captured: i64,
    amount_refunded: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_code: Option<String>,
    attempts: Vec<AttemptBody>,
    refunds: Vec<RefundBody>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

fn refund_body(p: &Payment, r: &crate::domain::Refund) -> RefundBody {
    RefundBody {
        id: ProviderReference::Refund(p.id, r.number).to_string(),
        payment_id: p.id,
        amount: r.amount,
        currency: p.money.currency(),
        status: r.status,
        created_at: r.created_at,
    }
}

impl From<Payment> for PaymentBody {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id,
            amount: p.money.amount(),
            currency: p.money.currency(),
            status: p.status,
            capture_method: p.capture_method,
            amount_authorized: p.authorized_amount,
            amount_captured: p.captured_amount,
            amount_refunded: p
                .refunds
                .iter()
                .filter(|r| r.status == RefundStatus::Succeeded)
                .map(|r| r.amount)
                .sum(),
            failure_code: p.failure_code.clone(),
            attempts: p
                .attempts
                .iter()
                .map(|a| AttemptBody {
                    id: ProviderReference::Attempt(p.id, a.number).to_string(),
                    status: a.status,
                    decline_code: a.decline_code.clone(),
                })
                .collect(),
            refunds: p.refunds.iter().map(|r| refund_body(&p, r)).collect(),
            created_at: p.created_at,
            customer_reference: p.customer_reference,
        }
    }
}

const MAX_REFERENCE_LEN: usize = 128;

/// Text we store must not hold control characters: PostgreSQL's `jsonb`
/// refuses NUL (`\u0000`), which failed the whole state transaction (and,
/// with Dapr's outbox, left a message retried forever); the others have no
/// business in a reference. 400, before anything is written.
pub(crate) fn plain_text(field: &'static str, value: &str) -> Result<(), PaymentsError> {
    if value.chars().any(char::is_control) {
        return Err(PaymentsError::ControlCharacters { field });
    }
    Ok(())
}

fn payment_id(raw: &str) -> Result<PaymentId, PaymentsError> {
    PaymentId::parse(raw).ok_or(PaymentsError::NotFound)
}

/// 200 when the provider answered, 202 when its answer is pending.
fn answer(outcome: Outcome) -> (StatusCode, Json<PaymentBody>) {
    match outcome {
        Outcome::Done(p) => (StatusCode::OK, Json(p.into())),
        Outcome::Pending(p) => (StatusCode::ACCEPTED, Json(p.into())),
    }
}

/// `POST /v1/payments`: validates, then saves the payment and publishes
/// `payments.payment.created` in one outbox transaction.
#[instrument(name = "payments.create", skip_all, fields(payment.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    scope: Option<Extension<IdempotencyScope>>,
    Authenticated(caller): Authenticated,
    Json(body): Json<CreatePayment>,
) -> Result<(StatusCode, Json<PaymentBody>), PaymentsError> {
    plain_text("customer_reference", &body.customer_reference)?;
    plain_text("currency", &body.currency)?;
    let money = Money::positive(body.amount, accepted_currency(&body.currency)?)?;
    let reference = body.customer_reference.trim();
    if reference.is_empty() || reference.len() > MAX_REFERENCE_LEN {
        return Err(PaymentsError::InvalidField {
            field: "customer_reference",
            reason: "must be 1 to 128 characters",
        });
    }
    let created = state
        .gateway
        .create(
            money,
            reference.to_owned(),
            body.capture_method,
            scope.as_ref().map(|Extension(s)| s.0.as_str()),
            caller.client_id.clone(),
        )
        .await?;
    let payment = match created {
        Created::New(payment) => {
            tracing::info!(payment.id = %payment.id, payment.currency = %payment.money.currency(), "payment created");
            payment
        }
        Created::Existing(payment) => {
            tracing::info!(payment.id = %payment.id, "repeated create: the key's payment exists");
            payment
        }
    };
    tracing::Span::current().record("payment.id", tracing::field::display(payment.id));
    Ok((StatusCode::CREATED, Json(payment.into())))
}

/// `POST /v1/payments/{id}/confirm`: authorizes with the provider (and
/// captures at once for `capture_method: automatic`).
#[instrument(name = "payments.confirm", skip_all, fields(payment.id = %id))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<ConfirmPayment>,
) -> Result<(StatusCode, Json<PaymentBody>), PaymentsError> {
    let id = payment_id(&id)?;
    owned(&state, &caller, id).await?;
    let card = body.card_number.trim();
    if card.len() < 12 || card.len() > 19 || !card.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PaymentsError::InvalidField {
            field: "card_number",
            reason: "must be 12 to 19 digits",
        });
    }
    Ok(answer(state.gateway.confirm(id, card.to_owned()).await?))
}

/// `POST /v1/payments/{id}/capture` (`amount` defaults to all authorized).
#[instrument(name = "payments.capture", skip_all, fields(payment.id = %id))]
pub(crate) async fn capture(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<AmountBody>,
) -> Result<(StatusCode, Json<PaymentBody>), PaymentsError> {
    let id = payment_id(&id)?;
    owned(&state, &caller, id).await?;
    let amount = body.amount;
    Ok(answer(state.gateway.capture(id, amount).await?))
}

/// `POST /v1/payments/{id}/cancel`.
#[instrument(name = "payments.cancel", skip_all, fields(payment.id = %id))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(_): Json<EmptyBody>,
) -> Result<Json<PaymentBody>, PaymentsError> {
    let id = payment_id(&id)?;
    owned(&state, &caller, id).await?;
    Ok(Json(state.gateway.cancel(id).await?.into()))
}

/// `POST /v1/payments/{id}/refunds` (`amount` defaults to all refundable):
/// 201 with the refund, 202 when the provider's answer is pending. With an
/// `Idempotency-Key` the refund is keyed by it: a retry answers the same
/// refund, never a second one (ADR 0046).
#[instrument(name = "payments.refund", skip_all, fields(payment.id = %id))]
pub(crate) async fn refund(
    State(state): State<AppState>,
    scope: Option<Extension<IdempotencyScope>>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    Json(body): Json<AmountBody>,
) -> Result<(StatusCode, Json<RefundBody>), PaymentsError> {
    let id = payment_id(&id)?;
    owned(&state, &caller, id).await?;
    let amount = body.amount;
    let key = scope.as_ref().map(|Extension(s)| s.0.as_str());
    let (outcome, number) = state.gateway.refund(id, amount, key).await?;
    let (status, payment) = match outcome {
        Outcome::Done(p) => (StatusCode::CREATED, p),
        Outcome::Pending(p) => (StatusCode::ACCEPTED, p),
    };
    let refund = payment
        .refund(number)
        .map(|r| refund_body(&payment, r))
        .ok_or_else(|| PaymentsError::Internal("refund missing after save".into()))?;
    Ok((status, Json(refund)))
}

/// `GET /v1/payments/{id}`.
#[instrument(name = "payments.get", skip_all, fields(payment.id = %id))]
pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<PaymentBody>, PaymentsError> {
    let id = payment_id(&id)?;
    Ok(Json(owned(&state, &caller, id).await?.into()))
}

/// The scope that sees and changes every client's payments (ADR 0028).
pub(crate) const ADMIN_SCOPE: &str = "payments:admin";

/// The payment, if `caller` may see it: its owner or an admin. Anyone else
/// gets 404, as for an id that does not exist (no existence oracle).
async fn owned(
    state: &AppState,
    caller: &AccessClaims,
    id: PaymentId,
) -> Result<crate::domain::Payment, PaymentsError> {
    let payment = state.gateway.get(id).await?;
    if caller.has_scope(ADMIN_SCOPE)
        || payment.owner_client_id.as_deref() == Some(caller.client_id.as_str())
    {
        Ok(payment)
    } else {
        Err(PaymentsError::NotFound)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    customer_reference: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ListBody {
    data: Vec<PaymentBody>,
    has_more: bool,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// `GET /v1/payments?customer_reference=&limit=&cursor=`: in creation
/// order; `next_cursor` continues after the last payment of this page.
#[instrument(name = "payments.list", skip_all)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListBody>, PaymentsError> {
    let Query(query) = query.map_err(|_| PaymentsError::InvalidField {
        field: "query",
        reason: "customer_reference, limit (1 to 100) and cursor only",
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(PaymentsError::InvalidField {
            field: "limit",
            reason: "must be 1 to 100",
        });
    }
    let cursor = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<u64>()
                .map_err(|_| PaymentsError::InvalidField {
                    field: "cursor",
                    reason: "must be a next_cursor from a previous page",
                })?,
        ),
    };
    if let Some(customer) = &query.customer_reference {
        plain_text("customer_reference", customer)?;
    }
    let customer = query.customer_reference.as_deref().map(str::trim);
    if customer.is_some_and(|c| c.is_empty() || c.len() > MAX_REFERENCE_LEN) {
        return Err(PaymentsError::InvalidField {
            field: "customer_reference",
            reason: "must be 1 to 128 characters",
        });
    }
    // Only the caller's own payments, unless it is an admin (ADR 0028).
    let owner = (!caller.has_scope(ADMIN_SCOPE)).then_some(caller.client_id.as_str());
    let page = state.gateway.list(owner, customer, cursor, limit).await?;
    let next_cursor = page.next.map(|n| n.to_string());
    Ok(Json(ListBody {
        data: page.payments.into_iter().map(Into::into).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}
