//! The `bookings` table with its `booking_history`: the saga's state, one
//! row per booking, every transition recorded with its cause.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::BookingState;

#[derive(Debug, Clone, Serialize)]
pub struct Booking {
    pub id: Uuid,
    pub offering_id: Uuid,
    pub participant: String,
    pub locale: String,
    pub amount: i64,
    pub currency: String,
    pub state: BookingState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub hold_until: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<i64>,
    #[serde(skip)]
    pub requested_by: String,
    #[serde(skip)]
    pub request_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<BookingState>,
    pub to: BookingState,
    pub cause: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

const COLUMNS: &str = "id, offering_id, participant, locale, amount, currency, state, payment_id,
    hold_until, refund_amount, requested_by, request_hash, created_at";

fn state_of(row: &PgRow, column: &str) -> Result<Option<BookingState>, sqlx::Error> {
    let state: Option<String> = row.try_get(column)?;
    state
        .map(|s| s.parse().map_err(|e: String| sqlx::Error::Decode(e.into())))
        .transpose()
}

fn from_row(row: &PgRow) -> Result<Booking, sqlx::Error> {
    Ok(Booking {
        id: row.try_get("id")?,
        offering_id: row.try_get("offering_id")?,
        participant: row.try_get("participant")?,
        locale: row.try_get("locale")?,
        amount: row.try_get("amount")?,
        currency: row.try_get("currency")?,
        state: state_of(row, "state")?.ok_or(sqlx::Error::RowNotFound)?,
        payment_id: row.try_get("payment_id")?,
        hold_until: row.try_get("hold_until")?,
        refund_amount: row.try_get("refund_amount")?,
        requested_by: row.try_get("requested_by")?,
        request_hash: row.try_get("request_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A new reservation's row.
#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    pub id: Uuid,
    pub offering_id: Uuid,
    pub participant: &'a str,
    pub locale: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub hold_until: OffsetDateTime,
    pub requested_by: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
}

pub async fn insert(conn: &mut PgConnection, new: &NewBooking<'_>) -> Result<Booking, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO bookings (id, offering_id, participant, locale, amount, currency, state,
             hold_until, requested_by, idempotency_key, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, 'reserved', $7, $8, $9, $10)
         RETURNING {COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.offering_id)
    .bind(new.participant)
    .bind(new.locale)
    .bind(new.amount)
    .bind(new.currency)
    .bind(new.hold_until)
    .bind(new.requested_by)
    .bind(new.idempotency_key)
    .bind(new.request_hash)
    .fetch_one(&mut *conn)
    .await?;
    record(conn, new.id, None, BookingState::Reserved, "reserved").await?;
    from_row(&row)
}

/// The booking `requested_by` made with `idempotency_key`, if any.
pub async fn by_idempotency_key(
    conn: &mut PgConnection,
    requested_by: &str,
    idempotency_key: &str,
) -> Result<Option<Booking>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE requested_by = $1 AND idempotency_key = $2"
    ))
    .bind(requested_by)
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Booking>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM bookings WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// The booking, locked for the caller's transaction (the saga's decisions
/// on one booking are serialised by this lock).
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Booking>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The booking paid by `payment_id`, locked.
pub async fn lock_by_payment(
    conn: &mut PgConnection,
    payment_id: &str,
) -> Result<Option<Booking>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM bookings WHERE payment_id = $1 FOR UPDATE"
    ))
    .bind(payment_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Ids of the bookings of an offering that still hold a place or money.
pub async fn ids_to_cancel(
    conn: &mut PgConnection,
    offering_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM bookings WHERE offering_id = $1 AND state IN ('reserved', 'confirmed')
          ORDER BY id",
    )
    .bind(offering_id)
    .fetch_all(conn)
    .await
}

pub async fn set_payment(
    conn: &mut PgConnection,
    id: Uuid,
    payment_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE bookings SET payment_id = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(payment_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_state(
    conn: &mut PgConnection,
    booking: &Booking,
    to: BookingState,
    refund: Option<i64>,
    cause: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bookings SET state = $2, refund_amount = COALESCE($3, refund_amount),
             updated_at = now()
          WHERE id = $1",
    )
    .bind(booking.id)
    .bind(to.as_str())
    .bind(refund)
    .execute(&mut *conn)
    .await?;
    record(conn, booking.id, Some(booking.state), to, cause).await
}

async fn record(
    conn: &mut PgConnection,
    id: Uuid,
    from: Option<BookingState>,
    to: BookingState,
    cause: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO booking_history (booking_id, from_state, to_state, cause)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(from.map(BookingState::as_str))
    .bind(to.as_str())
    .bind(cause)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn history(conn: &mut PgConnection, id: Uuid) -> Result<Vec<Transition>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT from_state, to_state, cause, at FROM booking_history
          WHERE booking_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Transition {
                from: state_of(row, "from_state")?,
                to: state_of(row, "to_state")?.ok_or(sqlx::Error::RowNotFound)?,
                cause: row.try_get("cause")?,
                at: row.try_get("at")?,
            })
        })
        .collect()
}
