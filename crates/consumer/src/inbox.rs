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

use sqlx::{Acquire, PgConnection};

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

/// Why [`check_table`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the inbox table is not the one of platform_consumer::inbox::MIGRATION: {0}")]
    Differs(String),
}

/// One column as the catalogue describes it: name, type, nullable, default.
type Column = (String, String, String, Option<String>);

/// Compares the `inbox` table the connection sees (its `search_path`) with
/// the one [`MIGRATION`] creates: the same columns (type, nullability,
/// default) and primary key; extra columns are allowed if an insert by
/// [`claim`] can leave them out (nullable or with a default). Builds the
/// expected table in a scratch schema inside a transaction that is rolled
/// back, so the database is left as it was.
pub async fn check_table(conn: &mut PgConnection) -> Result<(), TableError> {
    const SCRATCH: &str = "platform_consumer_expected";
    let mut tx = conn.begin().await?;
    let schema: Option<String> = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = to_regclass('inbox')",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(schema) = schema else {
        return Err(TableError::Differs("there is no table inbox".into()));
    };
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA {SCRATCH}; SET LOCAL search_path = {SCRATCH}"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(MIGRATION).execute(&mut *tx).await?;
    let expected = describe(&mut tx, SCRATCH).await?;
    let found = describe(&mut tx, &schema).await?;
    tx.rollback().await?;
    let differences = differences(&expected, &found);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(TableError::Differs(differences.join("; ")))
    }
}

/// The columns and the primary key of `<schema>.inbox`.
async fn describe(
    conn: &mut PgConnection,
    schema: &str,
) -> Result<(Vec<Column>, Vec<String>), sqlx::Error> {
    let columns = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
           FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = 'inbox'
          ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let key = sqlx::query_scalar(
        "SELECT k.column_name::text
           FROM information_schema.table_constraints t
           JOIN information_schema.key_column_usage k
             USING (constraint_catalog, constraint_schema, constraint_name)
          WHERE t.table_schema = $1 AND t.table_name = 'inbox'
            AND t.constraint_type = 'PRIMARY KEY'
          ORDER BY k.ordinal_position",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    Ok((columns, key))
}

fn differences(
    (expected, expected_key): &(Vec<Column>, Vec<String>),
    (found, found_key): &(Vec<Column>, Vec<String>),
) -> Vec<String> {
    let mut differences = Vec::new();
    for column in expected {
        match found.iter().find(|f| f.0 == column.0) {
            None => differences.push(format!("column {} is missing", column.0)),
            Some(f) if f != column => differences.push(format!(
                "column {} is {f:?}, expected {column:?} (name, type, nullable, default)",
                column.0
            )),
            Some(_) => {}
        }
    }
    for (name, _, nullable, default) in found {
        let known = expected.iter().any(|e| &e.0 == name);
        if !known && nullable == "NO" && default.is_none() {
            differences.push(format!(
                "column {name} is NOT NULL without a default: claims cannot fill it"
            ));
        }
    }
    if expected_key != found_key {
        differences.push(format!(
            "the primary key is {found_key:?}, expected {expected_key:?}"
        ));
    }
    differences
}
