//! Bookings: reserve a place (Idempotency-Key), pay it, read one with its
//! saga history, cancel one's own.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use platform_auth_token::Authenticated;
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::AppState;
use super::offerings::parse_id;
use crate::error::BookingsError;
use crate::saga::BookingRequest;
use crate::store::bookings::{Booking, Transition};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBooking {
    offering_id: String,
    /// Defaults to the token's subject (the member books for themselves).
    participant: Option<String>,
    /// The participant's language for messages (BCP 47, e.g. `de`).
    #[serde(default = "default_locale")]
    locale: String,
}

fn default_locale() -> String {
    "en".to_owned()
}

#[derive(Debug, Serialize)]
pub(super) struct BookingBody {
    #[serde(flatten)]
    booking: Booking,
    /// What the client needs to pay: the booking's payment, paid through
    /// bookings (`POST /v1/bookings/{id}/pay`) before `hold_until`.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<PaymentRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<Transition>,
}

#[derive(Debug, Serialize)]
struct PaymentRef {
    id: String,
    pay_path: String,
}

impl BookingBody {
    fn new(booking: Booking, history: Vec<Transition>) -> Self {
        let payment = booking.payment_id.as_ref().map(|id| PaymentRef {
            id: id.clone(),
            pay_path: format!("/v1/bookings/{}/pay", booking.id),
        });
        Self {
            booking,
            payment,
            history,
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<String, BookingsError> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(str::to_owned)
        .ok_or(BookingsError::IdempotencyKeyMissing)
}

fn parse_request(body: CreateBooking, subject: &str) -> Result<BookingRequest, BookingsError> {
    let offering_id = uuid::Uuid::parse_str(&body.offering_id)
        .map_err(|_| BookingsError::invalid("offering_id", "is not an offering id"))?;
    let participant = body.participant.unwrap_or_else(|| subject.to_owned());
    if participant.is_empty()
        || participant.len() > 100
        || participant.chars().any(char::is_control)
    {
        return Err(BookingsError::invalid(
            "participant",
            "must be 1 to 100 characters",
        ));
    }
    let locale = body.locale;
    if locale.is_empty()
        || locale.len() > 35
        || !locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(BookingsError::invalid("locale", "is not a language tag"));
    }
    Ok(BookingRequest {
        offering_id,
        participant,
        locale,
    })
}

#[instrument(name = "bookings.create", skip_all)]
pub(super) async fn create(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    headers: HeaderMap,
    Json(body): Json<CreateBooking>,
) -> Result<(StatusCode, Json<BookingBody>), BookingsError> {
    let key = idempotency_key(&headers)?;
    let request = parse_request(body, &claims.sub)?;
    let (booking, created) = state.saga.reserve(&claims.sub, &key, &request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(BookingBody::new(booking, Vec::new()))))
}

#[instrument(name = "bookings.get", skip_all, fields(booking.id = %id))]
pub(super) async fn get(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<BookingBody>, BookingsError> {
    let id = parse_id(&id, "booking")?;
    let (booking, history) = state
        .saga
        .get(id)
        .await?
        // A member sees only their own bookings; administrators all.
        .filter(|(b, _)| {
            b.requested_by == claims.sub || claims.scope.split(' ').any(|s| s == "bookings:admin")
        })
        .ok_or(BookingsError::NotFound("booking"))?;
    Ok(Json(BookingBody::new(booking, history)))
}

#[instrument(name = "bookings.cancel", skip_all, fields(booking.id = %id))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<BookingBody>, BookingsError> {
    let id = parse_id(&id, "booking")?;
    let booking = state.saga.cancel_by_member(id, &claims.sub).await?;
    Ok(Json(BookingBody::new(booking, Vec::new())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PayBooking {
    /// The sandbox provider's test cards (payments' `confirm`).
    card_number: String,
}

/// What paying answers: the booking (still `reserved`: payments' event
/// confirms it) and the payment's status at payments.
#[derive(Debug, Serialize)]
pub(super) struct PaidBody {
    #[serde(flatten)]
    booking: BookingBody,
    payment_status: String,
}

fn card_number(raw: &str) -> Result<String, BookingsError> {
    let digits: String = raw.chars().filter(|c| *c != ' ').collect();
    if (12..=19).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(BookingsError::invalid(
            "card_number",
            "must be 12 to 19 digits",
        ))
    }
}

#[instrument(name = "bookings.pay", skip_all, fields(booking.id = %id))]
pub(super) async fn pay(
    State(state): State<AppState>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<PayBooking>,
) -> Result<Json<PaidBody>, BookingsError> {
    let id = parse_id(&id, "booking")?;
    let key = idempotency_key(&headers)?;
    let card = card_number(&body.card_number)?;
    let (booking, payment) = state.saga.pay(id, &claims.sub, &key, &card).await?;
    Ok(Json(PaidBody {
        booking: BookingBody::new(booking, Vec::new()),
        payment_status: payment["status"].as_str().unwrap_or("unknown").to_owned(),
    }))
}
