//! The ledger's PostgreSQL store.
//!
//! Every write locks the accounts it touches (`FOR UPDATE`, in id order, so
//! concurrent writers never deadlock), checks bounds and currencies against
//! the locked rows to give a precise error, then inserts. The database checks
//! all of it again (see the migration); this code only makes the errors
//! clear.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use platform_money::Currency;
use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

use super::{AccountKind, EntryDraft, NewAccount, NormalSide};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The same id was used with different content.
    #[error("{field} differs from the existing record with this id")]
    Conflict { field: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(
        "account {account_id} would leave its bounds (balance {normal_balance} outside [{min:?}, {max:?}])"
    )]
    BoundsExceeded {
        account_id: Uuid,
        normal_balance: i128,
        min: Option<i64>,
        max: Option<i64>,
    },
    #[error("entry {0} is already reversed")]
    AlreadyReversed(Uuid),
    #[error("entry {0} is itself a reversal; post a new entry to correct it")]
    ReversalOfReversal(Uuid),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    pub min_balance: Option<i64>,
    pub max_balance: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PostedPosting {
    pub account_id: Uuid,
    pub amount: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostedEntry {
    pub id: Uuid,
    pub sequence: i64,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub posted_at: OffsetDateTime,
    pub reverses: Option<Uuid>,
    pub metadata: serde_json::Value,
    pub postings: Vec<PostedPosting>,
}

/// Whether a post created the entry or found it already there (idempotent replay).
#[derive(Debug, Clone)]
pub enum PostOutcome {
    Created(PostedEntry),
    Existing(PostedEntry),
}

impl PostOutcome {
    pub fn entry(&self) -> &PostedEntry {
        match self {
            Self::Created(e) | Self::Existing(e) => e,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    pub account_id: Uuid,
    pub currency: Currency,
    /// Debit-positive sum of the account's postings, minor units.
    pub balance: i64,
    /// The side the account normally holds: assets and expenses debit,
    /// the other kinds credit, contra accounts the other side of their
    /// kind ([`NormalSide::of`]).
    pub normal_side: NormalSide,
    /// The balance on `normal_side` (positive = what the account normally
    /// holds).
    pub normal_balance: i64,
    /// The balance covers the entries up to this sequence: the one asked
    /// for, else the last entry posting to the account that is included
    /// (0 before the first).
    pub as_of_sequence: i64,
}

/// One page of accounts in code order.
#[derive(Debug, Clone, Serialize)]
pub struct AccountPage {
    pub items: Vec<Account>,
    /// The code to continue after, while there may be more.
    pub next: Option<String>,
}

/// Which balance to compute.
#[derive(Debug, Clone, Copy)]
pub enum AsOf {
    Now,
    /// Entries with `sequence <= n`.
    Sequence(i64),
    /// Entries with `effective_at <= t`.
    Time(OffsetDateTime),
}

#[derive(Debug, Clone)]
pub struct Ledger {
    pool: PgPool,
}

struct LockedAccount {
    kind: AccountKind,
    currency: Currency,
    balance: i64,
    min_balance: Option<i64>,
    max_balance: Option<i64>,
}

impl Ledger {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates an account; the same id with the same content returns the
    /// existing account (`false`), with other content is a conflict.
    #[instrument(name = "ledger.create_account", skip_all, fields(account.id = %new.id))]
    pub async fn create_account(&self, new: &NewAccount) -> Result<(Account, bool), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, code, name, kind, currency, min_balance, max_balance)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT DO NOTHING",
        )
        .bind(new.id)
        .bind(&new.code)
        .bind(&new.name)
        .bind(new.kind)
        .bind(new.currency)
        .bind(new.min_balance)
        .bind(new.max_balance)
        .execute(&self.pool)
        .await
        .map_err(|e| match constraint(&e) {
            Some("accounts_currency_fkey") => StoreError::invalid("currency", "unknown currency"),
            _ => StoreError::Database(e),
        })?
        .rows_affected()
            == 1;
        let existing = match self.account(new.id).await? {
            Some(account) => account,
            // The conflict was on `code`, with another id.
            None => {
                return Err(StoreError::Conflict {
                    field: "code".into(),
                });
            }
        };
        if !inserted {
            let differing = [
                ("code", existing.code != new.code),
                ("name", existing.name != new.name),
                ("kind", existing.kind != new.kind),
                ("currency", existing.currency != new.currency),
                ("min_balance", existing.min_balance != new.min_balance),
                ("max_balance", existing.max_balance != new.max_balance),
            ];
            if let Some((field, _)) = differing.iter().find(|(_, differs)| *differs) {
                return Err(StoreError::Conflict {
                    field: (*field).into(),
                });
            }
        }
        Ok((existing, inserted))
    }

    pub async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT id, code, name, kind, currency, min_balance, max_balance, created_at FROM accounts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        Ok(Some(Account {
            id: r.get("id"),
            code: r.get("code"),
            name: r.get("name"),
            kind: r.get("kind"),
            currency: r.try_get("currency")?,
            min_balance: r.get("min_balance"),
            max_balance: r.get("max_balance"),
            created_at: r.get("created_at"),
        }))
    }

    /// Posts one entry in its own transaction.
    pub async fn post(&self, draft: &EntryDraft) -> Result<PostOutcome, StoreError> {
        let mut outcomes = self.post_batch(std::slice::from_ref(draft)).await?;
        outcomes.pop().ok_or(StoreError::NotFound("entry"))
    }

    /// Posts every entry or none, in one transaction.
    #[instrument(name = "ledger.post_batch", skip_all, fields(entries = drafts.len()))]
    pub async fn post_batch(&self, drafts: &[EntryDraft]) -> Result<Vec<PostOutcome>, StoreError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let outcomes = post_in(&mut tx, drafts, None).await?;
        tx.commit().await.map_err(map_commit_error)?;
        Ok(outcomes)
    }

    /// Posts the reversal of `original` under the id `reversal_id`.
    #[instrument(name = "ledger.reverse", skip_all, fields(entry.id = %original, reversal.id = %reversal_id))]
    pub async fn reverse(
        &self,
        original: Uuid,
        reversal_id: Uuid,
    ) -> Result<PostOutcome, StoreError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        // A replay of the same reversal returns it; the id used for anything
        // else is a conflict.
        if let Some(existing) = load_entry(&mut tx, reversal_id).await? {
            return if existing.reverses == Some(original) {
                Ok(PostOutcome::Existing(existing))
            } else {
                Err(StoreError::Conflict { field: "id".into() })
            };
        }
        let entry = load_entry(&mut tx, original)
            .await?
            .ok_or(StoreError::NotFound("entry"))?;
        if entry.reverses.is_some() {
            return Err(StoreError::ReversalOfReversal(original));
        }
        let draft = EntryDraft::reversal_of(reversal_id, &entry, OffsetDateTime::now_utc());
        let mut outcomes = post_in(&mut tx, std::slice::from_ref(&draft), Some(original)).await?;
        let outcome = outcomes.pop().ok_or(StoreError::NotFound("entry"))?;
        tx.commit().await.map_err(map_commit_error)?;
        Ok(outcome)
    }

    pub async fn entry(&self, id: Uuid) -> Result<Option<PostedEntry>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load_entry(&mut conn, id).await
    }

    #[instrument(name = "ledger.balance", skip_all, fields(account.id = %account_id))]
    pub async fn balance(&self, account_id: Uuid, as_of: AsOf) -> Result<Balance, StoreError> {
        // The running balance and the last entry in it, from one snapshot
        // (one statement).
        let row = sqlx::query(
            "SELECT kind, code, currency, balance,
                    (SELECT max(entry_sequence) FROM postings WHERE account_id = $1) AS last
               FROM accounts WHERE id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound("account"))?;
        let kind: AccountKind = row.get("kind");
        let side = NormalSide::of(kind, row.get::<&str, _>("code"));
        let (balance, as_of_sequence) = match as_of {
            AsOf::Now => (
                row.get::<i64, _>("balance"),
                row.get::<Option<i64>, _>("last").unwrap_or(0),
            ),
            AsOf::Sequence(n) => {
                let sum: Option<i64> = sqlx::query_scalar(
                    "SELECT sum(amount)::bigint FROM postings WHERE account_id = $1 AND entry_sequence <= $2",
                )
                .bind(account_id)
                .bind(n)
                .fetch_one(&self.pool)
                .await?;
                (sum.unwrap_or(0), n)
            }
            AsOf::Time(t) => {
                let row = sqlx::query(
                    "SELECT sum(p.amount)::bigint AS sum, max(e.sequence) AS last
                       FROM postings p JOIN entries e ON e.id = p.entry_id
                      WHERE p.account_id = $1 AND e.effective_at <= $2",
                )
                .bind(account_id)
                .bind(t)
                .fetch_one(&self.pool)
                .await?;
                (
                    row.get::<Option<i64>, _>("sum").unwrap_or(0),
                    row.get::<Option<i64>, _>("last").unwrap_or(0),
                )
            }
        };
        Ok(Balance {
            account_id,
            currency: row.try_get("currency")?,
            balance,
            normal_side: side,
            normal_balance: balance * side.sign(),
            as_of_sequence,
        })
    }

    /// Accounts in code order: the one with `code`, or a page of at most
    /// `limit` after the code `after`.
    #[instrument(name = "ledger.accounts", skip_all, fields(accounts.limit = limit))]
    pub async fn accounts(
        &self,
        code: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<AccountPage, StoreError> {
        let rows = sqlx::query(
            "SELECT id, code, name, kind, currency, min_balance, max_balance, created_at
               FROM accounts
              WHERE ($1::text IS NULL OR code = $1) AND ($2::text IS NULL OR code > $2)
              ORDER BY code
              LIMIT $3",
        )
        .bind(code)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .into_iter()
            .map(|r| {
                Ok(Account {
                    id: r.get("id"),
                    code: r.get("code"),
                    name: r.get("name"),
                    kind: r.get("kind"),
                    currency: r.try_get("currency")?,
                    min_balance: r.get("min_balance"),
                    max_balance: r.get("max_balance"),
                    created_at: r.get("created_at"),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            items.last().map(|a| a.code.clone())
        } else {
            None
        };
        Ok(AccountPage { items, next })
    }
}

/// Posts `drafts` in the caller's transaction. `reverses` marks a reversal.
/// A handful of statements whatever the batch size: lock the accounts,
/// insert every entry, load the ones that already existed, insert every
/// posting.
pub(crate) async fn post_in(
    conn: &mut PgConnection,
    drafts: &[EntryDraft],
    reverses: Option<Uuid>,
) -> Result<Vec<PostOutcome>, StoreError> {
    let mut accounts = lock_accounts(conn, drafts).await?;
    let prefix = |n: usize| {
        if drafts.len() > 1 {
            format!("entries[{n}].")
        } else {
            String::new()
        }
    };

    let ids: Vec<Uuid> = drafts.iter().map(|d| d.id).collect();
    let descriptions: Vec<&str> = drafts.iter().map(|d| d.description.as_str()).collect();
    let effective: Vec<OffsetDateTime> = drafts.iter().map(|d| d.effective_at).collect();
    let reversed: Vec<Option<Uuid>> = vec![reverses; drafts.len()];
    let metadata: Vec<&serde_json::Value> = drafts.iter().map(|d| &d.metadata).collect();
    let inserted: HashMap<Uuid, (i64, OffsetDateTime)> = sqlx::query(
        "INSERT INTO entries (id, description, effective_at, reverses, metadata)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::uuid[], $5::jsonb[])
         ON CONFLICT (id) DO NOTHING
         RETURNING id, sequence, posted_at",
    )
    .bind(&ids)
    .bind(&descriptions)
    .bind(&effective)
    .bind(&reversed)
    .bind(&metadata)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| match constraint(&e) {
        Some("entries_reverses_key") => StoreError::AlreadyReversed(reverses.unwrap_or_default()),
        Some("reversal_not_reversed") => {
            StoreError::ReversalOfReversal(reverses.unwrap_or_default())
        }
        _ => StoreError::Database(e),
    })?
    .into_iter()
    .map(|r| (r.get("id"), (r.get("sequence"), r.get("posted_at"))))
    .collect();

    // Entries that were already there (replays), or repeated within the batch.
    let mut created_ids = HashSet::new();
    let mut outcomes = Vec::with_capacity(drafts.len());
    let mut postings = PostingColumns::default();
    for (n, draft) in drafts.iter().enumerate() {
        match inserted.get(&draft.id) {
            Some(&(sequence, posted_at)) if created_ids.insert(draft.id) => {
                check_against_accounts(draft, &mut accounts, &prefix(n))?;
                postings.push(draft, sequence);
                outcomes.push(PostOutcome::Created(PostedEntry {
                    id: draft.id,
                    sequence,
                    description: draft.description.clone(),
                    effective_at: draft.effective_at,
                    posted_at,
                    reverses,
                    metadata: draft.metadata.clone(),
                    postings: draft
                        .postings
                        .iter()
                        .map(|p| PostedPosting {
                            account_id: p.account_id,
                            amount: p.amount,
                            currency: p.currency,
                        })
                        .collect(),
                }));
            }
            _ => {
                let existing = match outcomes
                    .iter()
                    .find(|o: &&PostOutcome| o.entry().id == draft.id)
                {
                    Some(earlier) => earlier.entry().clone(),
                    None => load_entry(conn, draft.id)
                        .await?
                        .ok_or(StoreError::NotFound("entry"))?,
                };
                if let Some(field) = first_difference(draft, &existing, reverses) {
                    return Err(StoreError::Conflict {
                        field: format!("{}{field}", prefix(n)),
                    });
                }
                outcomes.push(PostOutcome::Existing(existing));
            }
        }
    }
    if !postings.entry_ids.is_empty() {
        sqlx::query(
            "INSERT INTO postings (entry_id, position, account_id, amount, currency, entry_sequence)
             SELECT * FROM UNNEST($1::uuid[], $2::smallint[], $3::uuid[], $4::bigint[], $5::text[], $6::bigint[])",
        )
        .bind(&postings.entry_ids)
        .bind(&postings.positions)
        .bind(&postings.account_ids)
        .bind(&postings.amounts)
        .bind(&postings.currencies)
        .bind(&postings.sequences)
        .execute(&mut *conn)
        .await
        .map_err(|e| match constraint(&e) {
            Some("balance_within_bounds") => StoreError::invalid("postings", "an account would leave its bounds"),
            _ => StoreError::Database(e),
        })?;
    }
    Ok(outcomes)
}

/// Column arrays for one multi-row postings insert.
#[derive(Default)]
struct PostingColumns {
    entry_ids: Vec<Uuid>,
    positions: Vec<i16>,
    account_ids: Vec<Uuid>,
    amounts: Vec<i64>,
    currencies: Vec<Currency>,
    sequences: Vec<i64>,
}

impl PostingColumns {
    fn push(&mut self, draft: &EntryDraft, sequence: i64) {
        for (i, p) in draft.postings.iter().enumerate() {
            self.entry_ids.push(draft.id);
            self.positions.push(i16::try_from(i).unwrap_or(i16::MAX));
            self.account_ids.push(p.account_id);
            self.amounts.push(p.amount);
            self.currencies.push(p.currency);
            self.sequences.push(sequence);
        }
    }
}

/// Locks every account the drafts touch, in id order (no deadlocks between
/// concurrent writers), and returns their current state.
async fn lock_accounts(
    conn: &mut PgConnection,
    drafts: &[EntryDraft],
) -> Result<BTreeMap<Uuid, LockedAccount>, StoreError> {
    let ids: Vec<Uuid> = drafts
        .iter()
        .flat_map(|d| d.postings.iter().map(|p| p.account_id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = sqlx::query(
        "SELECT id, kind, currency, balance, min_balance, max_balance
           FROM accounts WHERE id = ANY($1) ORDER BY id FOR UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let accounts = rows
        .into_iter()
        .map(|r| {
            Ok((
                r.get("id"),
                LockedAccount {
                    kind: r.get("kind"),
                    currency: r.try_get("currency")?,
                    balance: r.get("balance"),
                    min_balance: r.get("min_balance"),
                    max_balance: r.get("max_balance"),
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(accounts)
}

/// Applies `draft` to the locked balances, naming the first problem: an
/// unknown account, a currency that is not the account's, a bound crossed.
fn check_against_accounts(
    draft: &EntryDraft,
    accounts: &mut BTreeMap<Uuid, LockedAccount>,
    prefix: &str,
) -> Result<(), StoreError> {
    for (i, posting) in draft.postings.iter().enumerate() {
        let account = accounts.get(&posting.account_id).ok_or_else(|| {
            StoreError::invalid(
                format!("{prefix}postings[{i}].account_id"),
                "unknown account",
            )
        })?;
        if account.currency != posting.currency {
            return Err(StoreError::invalid(
                format!("{prefix}postings[{i}].currency"),
                format!("the account is in {}", account.currency),
            ));
        }
    }
    // Bounds are checked on the entry's net effect per account, as the
    // database sees it at commit of each posting row: apply in order.
    for posting in &draft.postings {
        if let Some(account) = accounts.get_mut(&posting.account_id) {
            let new_balance = i128::from(account.balance) + i128::from(posting.amount);
            let normal = new_balance * i128::from(account.kind.normal_sign());
            let below = account
                .min_balance
                .is_some_and(|min| normal < i128::from(min));
            let above = account
                .max_balance
                .is_some_and(|max| normal > i128::from(max));
            if below || above {
                return Err(StoreError::BoundsExceeded {
                    account_id: posting.account_id,
                    normal_balance: normal,
                    min: account.min_balance,
                    max: account.max_balance,
                });
            }
            account.balance = i64::try_from(new_balance)
                .map_err(|_| StoreError::invalid("postings", "the balance would overflow"))?;
        }
    }
    Ok(())
}

fn first_difference(
    draft: &EntryDraft,
    existing: &PostedEntry,
    reverses: Option<Uuid>,
) -> Option<String> {
    if existing.reverses != reverses {
        return Some("reverses".into());
    }
    if existing.description != draft.description {
        return Some("description".into());
    }
    // PostgreSQL keeps microseconds; a replay of the same nanosecond value
    // must compare equal to what was stored.
    if existing.effective_at.unix_timestamp_nanos() / 1000
        != draft.effective_at.unix_timestamp_nanos() / 1000
    {
        return Some("effective_at".into());
    }
    if existing.metadata != draft.metadata {
        return Some("metadata".into());
    }
    if existing.postings.len() != draft.postings.len() {
        return Some("postings".into());
    }
    for (i, (old, new)) in existing.postings.iter().zip(&draft.postings).enumerate() {
        if old.account_id != new.account_id {
            return Some(format!("postings[{i}].account_id"));
        }
        if old.amount != new.amount {
            return Some(format!("postings[{i}].amount"));
        }
        if old.currency != new.currency {
            return Some(format!("postings[{i}].currency"));
        }
    }
    None
}

async fn load_entry(conn: &mut PgConnection, id: Uuid) -> Result<Option<PostedEntry>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT id, sequence, description, effective_at, posted_at, reverses, metadata FROM entries WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let postings = sqlx::query(
        "SELECT account_id, amount, currency FROM postings WHERE entry_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| {
        Ok(PostedPosting {
            account_id: r.get("account_id"),
            amount: r.get("amount"),
            currency: r.try_get("currency")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(PostedEntry {
        id: row.get("id"),
        sequence: row.get("sequence"),
        description: row.get("description"),
        effective_at: row.get("effective_at"),
        posted_at: row.get("posted_at"),
        reverses: row.get("reverses"),
        metadata: row.get("metadata"),
        postings,
    }))
}

fn constraint(error: &sqlx::Error) -> Option<&str> {
    error.as_database_error().and_then(|e| e.constraint())
}

fn map_commit_error(e: sqlx::Error) -> StoreError {
    match constraint(&e) {
        Some("entry_balances_per_currency") => {
            StoreError::invalid("postings", "every currency must balance on its own")
        }
        Some("entry_has_two_postings") => {
            StoreError::invalid("postings", "an entry needs at least two postings")
        }
        _ => StoreError::Database(e),
    }
}
