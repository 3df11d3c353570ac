//! The ledger API: accounts, entries (single and batch), reversals, balances.
//! contracts/openapi/bookkeeping.yaml describes it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use platform_problem::{Json, Problem};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::AppState;
use crate::error::BookkeepingError;
use crate::ledger::{
    Account, AccountPage, AccountRequest, AsOf, Balance, EntryError, EntryRequest, PostOutcome,
    PostedEntry, is_account_code,
};

/// Largest batch accepted by `POST /v1/entries/batch`.
pub(crate) const MAX_BATCH: usize = 1000;

fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, BookkeepingError> {
    Uuid::parse_str(raw).map_err(|_| BookkeepingError::NotFound(what))
}

/// 201 when created, 200 when the same request was already applied.
fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

pub(crate) async fn create_account(
    State(state): State<AppState>,
    Json(request): Json<AccountRequest>,
) -> Result<(StatusCode, Json<Account>), BookkeepingError> {
    let new = request.parse()?;
    let (account, created) = state.ledger.create_account(&new).await?;
    Ok((created_or_ok(created), Json(account)))
}

/// The largest page of `GET /v1/accounts`.
const MAX_ACCOUNTS_PAGE: i64 = 100;

fn invalid_query(detail: impl Into<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "Invalid query parameters",
    )
    .with_detail(detail)
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountsQuery {
    code: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// Accounts in code order, a page at a time (`after` = the previous page's
/// `next`), or the one account with `code`.
pub(crate) async fn list_accounts(
    State(state): State<AppState>,
    query: Result<Query<AccountsQuery>, QueryRejection>,
) -> Result<Json<AccountPage>, axum::response::Response> {
    use axum::response::IntoResponse;
    let Query(query) = query.map_err(|e| invalid_query(e.body_text()))?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_ACCOUNTS_PAGE).contains(&limit) {
        return Err(invalid_query(format!(
            "limit must be 1 to {MAX_ACCOUNTS_PAGE}"
        )));
    }
    // Both are account codes (the contract's pattern): anything else is a
    // malformed request, not a lookup that finds nothing (and PostgreSQL
    // refuses NUL in text).
    let is_code = |s: &Option<String>| s.as_deref().is_none_or(is_account_code);
    if !is_code(&query.code) || !is_code(&query.after) {
        return Err(invalid_query(
            "code and after are account codes: 1-128 characters of a-z, 0-9, '_', '.', ':', '-'",
        ));
    }
    state
        .ledger
        .accounts(query.code.as_deref(), query.after.as_deref(), limit)
        .await
        .map(Json)
        .map_err(|e| BookkeepingError::from(e).into_response())
}

pub(crate) async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Account>, BookkeepingError> {
    let id = parse_id(&id, "account")?;
    state
        .ledger
        .account(id)
        .await?
        .map(Json)
        .ok_or(BookkeepingError::NotFound("account"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BalanceQuery {
    /// Unsigned: a negative sequence is refused with the other malformed
    /// queries (400), not answered as an empty balance.
    as_of_sequence: Option<u64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    as_of: Option<OffsetDateTime>,
}

pub(crate) async fn get_balance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<BalanceQuery>, QueryRejection>,
) -> Result<Json<Balance>, axum::response::Response> {
    use axum::response::IntoResponse;
    let Query(query) = query.map_err(|e| invalid_query(e.body_text()))?;
    let as_of = match (query.as_of_sequence, query.as_of) {
        (Some(_), Some(_)) => {
            return Err(invalid_query("give as_of_sequence or as_of, not both"));
        }
        (Some(n), None) => AsOf::Sequence(
            i64::try_from(n).map_err(|_| invalid_query("as_of_sequence: at most 2^63 - 1"))?,
        ),
        (None, Some(t)) => AsOf::Time(t),
        (None, None) => AsOf::Now,
    };
    let id = parse_id(&id, "account").map_err(IntoResponse::into_response)?;
    state
        .ledger
        .balance(id, as_of)
        .await
        .map(Json)
        .map_err(|e| BookkeepingError::from(e).into_response())
}

pub(crate) async fn post_entry(
    State(state): State<AppState>,
    Json(request): Json<EntryRequest>,
) -> Result<(StatusCode, Json<PostedEntry>), BookkeepingError> {
    let draft = request.parse()?;
    let outcome = state.ledger.post(&draft).await?;
    let created = matches!(outcome, PostOutcome::Created(_));
    Ok((created_or_ok(created), Json(outcome.entry().clone())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    entries: Vec<EntryRequest>,
}

#[derive(Debug, Serialize)]
pub(crate) struct BatchItem {
    id: Uuid,
    sequence: i64,
    created: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct BatchResult {
    entries: Vec<BatchItem>,
}

/// All entries are posted, or none (one transaction).
pub(crate) async fn post_batch(
    State(state): State<AppState>,
    Json(batch): Json<Batch>,
) -> Result<(StatusCode, Json<BatchResult>), BookkeepingError> {
    if batch.entries.is_empty() || batch.entries.len() > MAX_BATCH {
        return Err(EntryError {
            field: "entries".into(),
            reason: format!("1 to {MAX_BATCH} entries"),
        }
        .into());
    }
    let drafts = batch
        .entries
        .into_iter()
        .enumerate()
        .map(|(i, request)| {
            request.parse().map_err(|e| EntryError {
                field: format!("entries[{i}].{}", e.field),
                reason: e.reason,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes = state.ledger.post_batch(&drafts).await?;
    let entries: Vec<BatchItem> = outcomes
        .iter()
        .map(|o| BatchItem {
            id: o.entry().id,
            sequence: o.entry().sequence,
            created: matches!(o, PostOutcome::Created(_)),
        })
        .collect();
    let any_created = entries.iter().any(|e| e.created);
    Ok((created_or_ok(any_created), Json(BatchResult { entries })))
}

pub(crate) async fn get_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PostedEntry>, BookkeepingError> {
    let id = parse_id(&id, "entry")?;
    state
        .ledger
        .entry(id)
        .await?
        .map(Json)
        .ok_or(BookkeepingError::NotFound("entry"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reversal {
    /// The reversal entry's own id (idempotency).
    id: Uuid,
}

pub(crate) async fn reverse_entry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(reversal): Json<Reversal>,
) -> Result<(StatusCode, Json<PostedEntry>), BookkeepingError> {
    let original = parse_id(&id, "entry")?;
    let outcome = state.ledger.reverse(original, reversal.id).await?;
    let created = matches!(outcome, PostOutcome::Created(_));
    Ok((created_or_ok(created), Json(outcome.entry().clone())))
}
