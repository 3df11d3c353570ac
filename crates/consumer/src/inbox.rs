//! The inbox: exactly-once effect for at-least-once delivery.
//!
//! Dapr delivers an event at least once (redelivery after RETRY, a crash
//! before the ack, the outbox republishing). Recording `(source, id)` in the
//! same transaction as the event's effect makes the effect happen once: the
//! second delivery finds the row and does nothing. Concurrent deliveries of
//! the same event serialise on the primary key (each waits at most its
//! transaction's `lock_timeout`).
//!
//! Every consumer has an `inbox` table in its own database, created by one
//! of its own migrations with the SQL of [`MIGRATION`] (copied into the
//! migration file: sqlx checksums a service's migrations, so the kit cannot
//! add itself to their history). Each consumer's tests run [`check_table`]
//! on its migrated database, which fails when its table is not the one the
//! claims here need.

use sqlx::PgConnection;

use crate::CloudEvent;

/// The `inbox` table as the claims need it: the SQL for a consumer's
/// migration.
pub const MIGRATION: &str = include_str!("../sql/inbox.sql");

/// What the inbox records of a delivered event: its identity and routing.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub source: &'a str,
    pub id: &'a str,
    pub event_type: &'a str,
    pub topic: &'a str,
    pub subject: Option<&'a str>,
}

impl<'a> Entry<'a> {
    /// The entry of `event`, recorded as delivered from `topic`.
    /// Also records the event's age in [`crate::EVENT_AGE`] (freshness).
    pub fn of<T>(event: &'a CloudEvent<T>, topic: &'a str) -> Self {
        if let Some(age) = event.age_seconds() {
            metrics::histogram!(crate::EVENT_AGE, "topic" => topic.to_owned()).record(age);
        }
        Self {
            source: &event.source,
            id: &event.id,
            event_type: &event.event_type,
            topic,
            subject: event.subject.as_deref(),
        }
    }
}

/// Claims `entry` in the caller's transaction: `true` the first time (apply
/// the effect in the same transaction), `false` if it was already claimed.
pub async fn claim(conn: &mut PgConnection, entry: &Entry<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (source, event_id, event_type, topic, subject)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source, event_id) DO NOTHING",
    )
    .bind(entry.source)
    .bind(entry.id)
    .bind(entry.event_type)
    .bind(entry.topic)
    .bind(entry.subject)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Claims all `entries` in one statement in the caller's transaction and
/// answers, per entry in order, whether this is its first claim: `false`
/// for an event claimed before, and for the repeats of an event that occurs
/// more than once in `entries` (only its first occurrence is `true`).
pub async fn claim_batch<'a>(
    conn: &mut PgConnection,
    entries: &[Entry<'a>],
) -> Result<Vec<bool>, sqlx::Error> {
    let column = |f: fn(&Entry<'a>) -> Option<&'a str>| entries.iter().map(f).collect::<Vec<_>>();
    let claimed: std::collections::HashSet<(String, String)> = sqlx::query_as(
        "INSERT INTO inbox (source, event_id, event_type, topic, subject)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (source, event_id) DO NOTHING
         RETURNING source, event_id",
    )
    .bind(column(|e| Some(e.source)))
    .bind(column(|e| Some(e.id)))
    .bind(column(|e| Some(e.event_type)))
    .bind(column(|e| Some(e.topic)))
    .bind(column(|e| e.subject))
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect();
    let mut seen = std::collections::HashSet::new();
    Ok(entries
        .iter()
        .map(|e| {
            let key = (e.source.to_owned(), e.id.to_owned());
            claimed.contains(&key) && seen.insert(key)
        })
        .collect())
}

pub use crate::table::TableError;

/// Compares the `inbox` table the connection sees (its `search_path`) with
/// the one [`MIGRATION`] creates: the same columns (type, nullability,
/// default) and primary key; extra columns are allowed if an insert by
/// [`claim`] can leave them out (nullable or with a default). Builds the
/// expected table in a scratch schema inside a transaction that is rolled
/// back, so the database is left as it was.
pub async fn check_table(conn: &mut PgConnection) -> Result<(), TableError> {
    crate::table::check(conn, "inbox", MIGRATION).await
}
