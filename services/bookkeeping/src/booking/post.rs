//! Writing a batch of bookings: the inbox claims, the system accounts the
//! bookings need, the journal entries, and the deferred balance checks run
//! where a failure can still be pinned on one event.

use std::collections::BTreeMap;

use platform_consumer::Outcome;
use platform_consumer::inbox::{self, Entry};
use sqlx::{Acquire, PgConnection};
use tracing::instrument;

use super::Prepared;
use crate::ledger::{self, StoreError};
use crate::posting_rules::{Booking, SystemAccount};

/// The fast path, all or nothing (inside a savepoint): one inbox insert for
/// the batch, one upsert of the accounts it needs, one ledger post. Returns,
/// per event, whether it was applied (`false`: already in the inbox, or a
/// repeat within the batch).
pub(super) async fn book_together(
    conn: &mut PgConnection,
    prepared: &[Prepared],
) -> Result<Vec<bool>, StoreError> {
    let mut savepoint = conn.begin().await?;
    let entries: Vec<Entry<'_>> = prepared.iter().map(Prepared::inbox_entry).collect();
    let applied = inbox::claim_batch(&mut savepoint, &entries).await?;

    let mut drafts = Vec::new();
    let mut accounts = BTreeMap::new();
    for (p, first) in prepared.iter().zip(&applied) {
        if let (true, Some(booking)) = (*first, &p.booking) {
            for account in &booking.accounts {
                accounts.insert(account.id, account);
            }
            drafts.push(booking.entry.clone());
        }
    }
    if !accounts.is_empty() {
        ensure_accounts(&mut savepoint, accounts.values().copied()).await?;
    }
    if !drafts.is_empty() {
        ledger::post_in(&mut savepoint, &drafts, None).await?;
        check_balances_now(&mut savepoint).await?;
    }
    savepoint.commit().await?;
    Ok(applied)
}

/// The slow path for one event, in its own savepoint.
#[instrument(name = "events.book", skip_all, fields(event.id = %p.event.id, event.type = %p.event.event_type))]
pub(super) async fn book_one(conn: &mut PgConnection, p: &Prepared) -> Outcome {
    let mut savepoint = match conn.begin().await {
        Ok(savepoint) => savepoint,
        Err(error) => {
            tracing::warn!(%error, "cannot open a savepoint");
            return Outcome::Retry;
        }
    };
    let outcome = match apply(&mut savepoint, &p.inbox_entry(), p.booking.as_ref()).await {
        Ok(true) => Outcome::Applied,
        Ok(false) => Outcome::Duplicate,
        Err(StoreError::Database(error)) => {
            tracing::warn!(%error, "event not applied, asking for redelivery");
            return Outcome::Retry;
        }
        // Invalid against the ledger (bounds, currencies): never bookable.
        Err(error) => return Outcome::Rejected(error.to_string()),
    };
    match savepoint.commit().await {
        Ok(()) => outcome,
        Err(error) => {
            tracing::warn!(%error, "event not applied, asking for redelivery");
            Outcome::Retry
        }
    }
}

/// Claims the event and books it; `false` if it was already applied.
async fn apply(
    conn: &mut PgConnection,
    entry: &Entry<'_>,
    booking: Option<&Booking>,
) -> Result<bool, StoreError> {
    if !inbox::claim(conn, entry).await? {
        return Ok(false);
    }
    if let Some(booking) = booking {
        ensure_accounts(conn, booking.accounts.iter()).await?;
        ledger::post_in(conn, std::slice::from_ref(&booking.entry), None).await?;
        // Run the deferred balance checks now, inside this event's savepoint,
        // so a bad entry fails alone instead of failing the batch's commit.
        check_balances_now(conn).await?;
    }
    Ok(true)
}

/// Runs the deferred constraint checks (balances, bounds) at once, then
/// defers them again for what follows in the transaction.
async fn check_balances_now(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SET CONSTRAINTS ALL DEFERRED")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Creates the system accounts a booking needs, if they are not there yet.
async fn ensure_accounts<'a>(
    conn: &mut PgConnection,
    accounts: impl Iterator<Item = &'a SystemAccount>,
) -> Result<(), StoreError> {
    let accounts: Vec<_> = accounts.collect();
    sqlx::query(
        "INSERT INTO accounts (id, code, name, kind, currency, min_balance)
         SELECT id, code, name, kind, currency, NULL
           FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::account_kind[], $5::text[])
                AS a(id, code, name, kind, currency)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(accounts.iter().map(|a| a.id).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.code.as_str()).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())
    .bind(accounts.iter().map(|a| a.kind).collect::<Vec<_>>())
    .bind(
        accounts
            .iter()
            .map(|a| a.currency.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
