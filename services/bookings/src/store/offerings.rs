//! The `offerings` table: what can be booked and how many places are taken.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{OfferingSpec, RefundPolicy};
use crate::error::BookingsError;

/// An offering as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Offering {
    pub id: Uuid,
    pub kind: String,
    pub title: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    pub price_amount: i64,
    pub currency: String,
    pub capacity: i32,
    pub places_left: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub booking_opens_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub booking_closes_at: OffsetDateTime,
    pub refund_policy: RefundPolicy,
    pub status: String,
}

const COLUMNS: &str = "id, kind, title, starts_at, price_amount, currency, capacity, taken,
    booking_opens_at, booking_closes_at, refund_policy, status";

fn from_row(row: &PgRow) -> Result<Offering, sqlx::Error> {
    let policy: serde_json::Value = row.try_get("refund_policy")?;
    let capacity: i32 = row.try_get("capacity")?;
    let taken: i32 = row.try_get("taken")?;
    Ok(Offering {
        id: row.try_get("id")?,
        kind: row.try_get("kind")?,
        title: row.try_get("title")?,
        starts_at: row.try_get("starts_at")?,
        price_amount: row.try_get("price_amount")?,
        currency: row.try_get("currency")?,
        capacity,
        places_left: capacity - taken,
        booking_opens_at: row.try_get("booking_opens_at")?,
        booking_closes_at: row.try_get("booking_closes_at")?,
        refund_policy: serde_json::from_value(policy)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        status: row.try_get("status")?,
    })
}

/// The catalogue's filter and page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CatalogueQuery {
    pub kind: Option<String>,
    pub from: Option<OffsetDateTime>,
    /// Only offerings with at least one place left.
    pub available: bool,
    /// After this `(starts_at, id)` (the previous page's last offering).
    pub after: Option<(OffsetDateTime, Uuid)>,
    pub limit: i64,
}

#[derive(Debug, Clone)]
pub struct Offerings {
    pool: PgPool,
}

impl Offerings {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn create(
        &self,
        conn: &mut PgConnection,
        spec: &OfferingSpec,
    ) -> Result<Offering, sqlx::Error> {
        let row = sqlx::query(&format!(
            "INSERT INTO offerings (id, kind, title, starts_at, price_amount, currency, capacity,
                 booking_opens_at, booking_closes_at, refund_policy)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(spec.kind.as_str())
        .bind(&spec.title)
        .bind(spec.starts_at)
        .bind(spec.price.amount())
        .bind(spec.price.currency().as_str())
        .bind(spec.capacity)
        .bind(spec.booking_opens_at)
        .bind(spec.booking_closes_at)
        .bind(serde_json::to_value(&spec.refund_policy).unwrap_or_default())
        .fetch_one(conn)
        .await?;
        from_row(&row)
    }

    /// Replaces an open offering's terms. The price and currency of existing
    /// bookings stay what they were booked at; a capacity below the places
    /// already taken is refused by the table's CHECK.
    pub async fn replace(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        spec: &OfferingSpec,
    ) -> Result<Offering, BookingsError> {
        let result = sqlx::query(&format!(
            "UPDATE offerings SET kind = $2, title = $3, starts_at = $4, price_amount = $5,
                 currency = $6, capacity = $7, booking_opens_at = $8, booking_closes_at = $9,
                 refund_policy = $10, updated_at = now()
              WHERE id = $1 AND status = 'open'
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(spec.kind.as_str())
        .bind(&spec.title)
        .bind(spec.starts_at)
        .bind(spec.price.amount())
        .bind(spec.price.currency().as_str())
        .bind(spec.capacity)
        .bind(spec.booking_opens_at)
        .bind(spec.booking_closes_at)
        .bind(serde_json::to_value(&spec.refund_policy).unwrap_or_default())
        .fetch_optional(conn)
        .await;
        match result {
            Ok(Some(row)) => Ok(from_row(&row)?),
            Ok(None) => Err(BookingsError::NotFound("open offering")),
            Err(sqlx::Error::Database(e)) if e.constraint() == Some("offerings_not_oversold") => {
                Err(BookingsError::invalid(
                    "capacity",
                    "is below the places already taken",
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Offering>, sqlx::Error> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM offerings WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// One page of the catalogue, ordered by start then id.
    pub async fn list(&self, query: &CatalogueQuery) -> Result<Vec<Offering>, sqlx::Error> {
        let (after_start, after_id) = query.after.unzip();
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM offerings
              WHERE status = 'open'
                AND ($1::text IS NULL OR kind = $1)
                AND ($2::timestamptz IS NULL OR starts_at >= $2)
                AND (NOT $3 OR taken < capacity)
                AND ($4::timestamptz IS NULL OR (starts_at, id) > ($4, $5))
              ORDER BY starts_at, id
              LIMIT $6"
        ))
        .bind(query.kind.as_deref())
        .bind(query.from)
        .bind(query.available)
        .bind(after_start)
        .bind(after_id)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
    }

    /// Marks the offering cancelled (no new bookings); returns false if it
    /// was not open.
    pub async fn mark_cancelled(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
    ) -> Result<bool, sqlx::Error> {
        let updated = sqlx::query(
            "UPDATE offerings SET status = 'cancelled', updated_at = now()
              WHERE id = $1 AND status = 'open'",
        )
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }
}

/// The price a booking made now pays: the offering's amount and currency.
pub async fn terms(
    conn: &mut PgConnection,
    offering_id: Uuid,
) -> Result<Option<(i64, String)>, sqlx::Error> {
    sqlx::query_as("SELECT price_amount, currency FROM offerings WHERE id = $1")
        .bind(offering_id)
        .fetch_optional(conn)
        .await
}

/// Takes one place if one is left, the booking window is open at `now` and
/// the price is still `amount` `currency`: one conditional UPDATE, so
/// concurrent bookers serialise on the row and the last place goes to
/// exactly one of them. `None`: the offering does not exist;
/// `Some(Err)`: why no place was taken.
pub async fn take_place(
    conn: &mut PgConnection,
    offering_id: Uuid,
    now: OffsetDateTime,
    amount: i64,
    currency: &str,
) -> Result<Option<Result<(), BookingsError>>, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE offerings SET taken = taken + 1
          WHERE id = $1 AND status = 'open' AND taken < capacity
            AND booking_opens_at <= $2 AND $2 < booking_closes_at
            AND price_amount = $3 AND currency = $4",
    )
    .bind(offering_id)
    .bind(now)
    .bind(amount)
    .bind(currency)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if taken == 1 {
        return Ok(Some(Ok(())));
    }
    let why: Option<(bool, bool)> = sqlx::query_as(
        "SELECT status = 'open' AND booking_opens_at <= $2 AND $2 < booking_closes_at,
                taken < capacity
           FROM offerings WHERE id = $1",
    )
    .bind(offering_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(why.map(|(open, places_left)| {
        Err(match (open, places_left) {
            (false, _) => BookingsError::BookingClosed,
            (true, false) => BookingsError::SoldOut,
            // Open with places, so the price changed since it was read.
            (true, true) => BookingsError::TermsChanged,
        })
    }))
}

/// Gives one place back.
pub async fn free_place(conn: &mut PgConnection, offering_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE offerings SET taken = taken - 1 WHERE id = $1")
        .bind(offering_id)
        .execute(conn)
        .await?;
    Ok(())
}
