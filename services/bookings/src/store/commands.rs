//! The `saga_commands` table: calls to other services the saga decided on,
//! written in the transaction of the decision, run until done.

use sqlx::{PgConnection, Row};
use uuid::Uuid;

/// One pending call.
#[derive(Debug, Clone)]
pub struct PendingCommand {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub command: String,
    pub amount: Option<i64>,
    pub attempts: i32,
    /// The booking as it is now (its state decides whether a call is
    /// still wanted).
    pub state: String,
    pub payment_id: Option<String>,
    pub hold_until: time::OffsetDateTime,
    pub price: i64,
    pub currency: String,
    pub participant: String,
}

/// Records a command; a booking has each command at most once (the saga
/// never decides the same compensation twice).
pub async fn insert(
    conn: &mut PgConnection,
    booking_id: Uuid,
    command: &str,
    amount: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO saga_commands (id, booking_id, command, amount) VALUES ($1, $2, $3, $4)
         ON CONFLICT (booking_id, command) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(booking_id)
    .bind(command)
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending commands (of one booking, or any), locked so that concurrent
/// workers and requests never run the same one at once.
pub async fn claim_pending(
    conn: &mut PgConnection,
    booking_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PendingCommand>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.id, c.booking_id, c.command, c.amount, c.attempts, b.state, b.payment_id,
                b.hold_until, b.amount AS price, b.currency, b.participant
           FROM saga_commands c JOIN bookings b ON b.id = c.booking_id
          WHERE c.done_at IS NULL AND c.next_at <= now()
            AND ($1::uuid IS NULL OR c.booking_id = $1)
          ORDER BY c.next_at
          LIMIT $2
          FOR UPDATE OF c SKIP LOCKED",
    )
    .bind(booking_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingCommand {
                id: row.try_get("id")?,
                booking_id: row.try_get("booking_id")?,
                command: row.try_get("command")?,
                amount: row.try_get("amount")?,
                attempts: row.try_get("attempts")?,
                state: row.try_get("state")?,
                payment_id: row.try_get("payment_id")?,
                hold_until: row.try_get("hold_until")?,
                price: row.try_get("price")?,
                currency: row.try_get("currency")?,
                participant: row.try_get("participant")?,
            })
        })
        .collect()
}

pub async fn mark_done(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE saga_commands SET done_at = now(), attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE saga_commands SET attempts = attempts + 1, last_error = left($2, 500),
             next_at = now() + make_interval(secs => least(60, power(2, attempts)))
          WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many commands are still pending (for tests and the runbook).
pub async fn pending_count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT count(*) FROM saga_commands WHERE done_at IS NULL")
        .fetch_one(conn)
        .await?
        .try_get(0)
}
