//! Entries and accounts as the API receives them, validated before any SQL.

use std::collections::BTreeMap;

use platform_money::Currency;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "account_kind", rename_all = "lowercase")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl AccountKind {
    /// +1 when the kind's balance grows with debits, -1 with credits.
    pub fn normal_sign(self) -> i64 {
        match self {
            Self::Asset | Self::Expense => 1,
            Self::Liability | Self::Equity | Self::Revenue => -1,
        }
    }
}

/// Codes of the contra accounts (docs/chart-of-accounts.md): kept under
/// their kind, so that reports group them with it (refunds are revenue
/// given back), but normally holding the other side (refunds: debit).
pub const CONTRA_CODE_PREFIXES: &[&str] = &["revenue:refunds:"];

/// The side an account's balance normally grows on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NormalSide {
    Debit,
    Credit,
}

impl NormalSide {
    /// The kind's side, the other one for a contra account.
    pub fn of(kind: AccountKind, code: &str) -> Self {
        let contra = CONTRA_CODE_PREFIXES
            .iter()
            .any(|prefix| code.starts_with(prefix));
        match (kind.normal_sign() > 0, contra) {
            (true, false) | (false, true) => Self::Debit,
            (false, false) | (true, true) => Self::Credit,
        }
    }

    /// +1 for debit (postings are debit-positive), -1 for credit.
    pub fn sign(self) -> i64 {
        match self {
            Self::Debit => 1,
            Self::Credit => -1,
        }
    }
}

/// Why a draft is not a valid entry or account. `field` names the offending
/// input, e.g. `postings[1].amount`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EntryError {
    pub field: String,
    pub reason: String,
}

impl EntryError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// `code` as a currency, or why not, naming `field`.
fn parse_currency(field: &str, code: &str) -> Result<Currency, EntryError> {
    Currency::parse(code)
        .map_err(|_| EntryError::new(field, "must be an ISO 4217 code such as EUR"))
}

/// An account to create. Built by [`AccountRequest::parse`] from the API,
/// or by code that knows its values are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
    /// Lower bound of the normal-direction balance; `None`: overdraft
    /// allowed.
    pub min_balance: Option<i64>,
    pub max_balance: Option<i64>,
}

/// `POST /v1/accounts` as received: the currency still text, so that a bad
/// code is a 422 naming its field like every other invalid value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: String,
    /// Lower bound of the normal-direction balance. Absent: 0 (no
    /// overdraft); `null`: overdraft allowed.
    #[serde(default = "zero")]
    pub min_balance: Option<i64>,
    #[serde(default)]
    pub max_balance: Option<i64>,
}

fn zero() -> Option<i64> {
    Some(0)
}

/// An account code as the contract spells it: 1–128 characters of
/// `[a-z0-9_.:-]`, starting with a letter or digit.
pub fn is_account_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 128
        && code
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
}

impl AccountRequest {
    /// The account, or the first invalid field.
    pub fn parse(self) -> Result<NewAccount, EntryError> {
        let code_ok = is_account_code(&self.code);
        if !code_ok {
            return Err(EntryError::new(
                "code",
                "1-128 characters of a-z, 0-9, '_', '.', ':', '-'",
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(EntryError::new("name", "1-200 characters"));
        }
        let currency = parse_currency("currency", &self.currency)?;
        // A new account holds 0: bounds that exclude it could never be met
        // (the database's balance_within_bounds check refused the row: 500).
        if self.min_balance.is_some_and(|min| min > 0) {
            return Err(EntryError::new(
                "min_balance",
                "must be 0 or below: a new account's balance is 0",
            ));
        }
        if self.max_balance.is_some_and(|max| max < 0) {
            return Err(EntryError::new(
                "max_balance",
                "must be 0 or above: a new account's balance is 0",
            ));
        }
        if let (Some(min), Some(max)) = (self.min_balance, self.max_balance)
            && min > max
        {
            return Err(EntryError::new(
                "max_balance",
                "must not be below min_balance",
            ));
        }
        Ok(NewAccount {
            id: self.id,
            code: self.code,
            name: self.name,
            kind: self.kind,
            currency,
            min_balance: self.min_balance,
            max_balance: self.max_balance,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingDraft {
    pub account_id: Uuid,
    /// Minor units; debit positive, credit negative.
    pub amount: i64,
    pub currency: Currency,
}

/// A journal entry to post. The client chooses `id`: posting the same id
/// again is idempotent. [`EntryDraft::validate`] checks what can be checked
/// without the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub id: Uuid,
    pub description: String,
    pub effective_at: OffsetDateTime,
    pub postings: Vec<PostingDraft>,
    pub metadata: serde_json::Value,
}

/// `POST /v1/entries` (and each of a batch) as received.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryRequest {
    pub id: Uuid,
    #[serde(default)]
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_at: OffsetDateTime,
    pub postings: Vec<PostingRequest>,
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingRequest {
    pub account_id: Uuid,
    pub amount: i64,
    pub currency: String,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

pub const MAX_POSTINGS: usize = 1000;

impl EntryRequest {
    /// The draft, valid as [`EntryDraft::validate`] means it, or the first
    /// invalid field, in the order `validate` checks them.
    pub fn parse(self) -> Result<EntryDraft, EntryError> {
        let mut draft = EntryDraft {
            id: self.id,
            description: self.description,
            effective_at: self.effective_at,
            postings: Vec::with_capacity(self.postings.len()),
            metadata: self.metadata,
        };
        draft.check_fields(self.postings.len())?;
        for (i, posting) in self.postings.into_iter().enumerate() {
            check_amount(i, posting.amount)?;
            let currency = parse_currency(&format!("postings[{i}].currency"), &posting.currency)?;
            draft.postings.push(PostingDraft {
                account_id: posting.account_id,
                amount: posting.amount,
                currency,
            });
        }
        draft.check_balanced()?;
        Ok(draft)
    }
}

fn check_amount(i: usize, amount: i64) -> Result<(), EntryError> {
    if amount == 0 {
        return Err(EntryError::new(
            format!("postings[{i}].amount"),
            "must not be zero",
        ));
    }
    Ok(())
}

impl EntryDraft {
    /// Checks everything that can be checked without the database: at least
    /// two postings, no zero amounts, and a zero sum in every currency (an
    /// entry across currencies needs FX legs that balance in each).
    pub fn validate(&self) -> Result<(), EntryError> {
        self.check_fields(self.postings.len())?;
        for (i, posting) in self.postings.iter().enumerate() {
            check_amount(i, posting.amount)?;
        }
        self.check_balanced()
    }

    fn check_fields(&self, postings: usize) -> Result<(), EntryError> {
        if self.description.len() > 500 {
            return Err(EntryError::new("description", "at most 500 characters"));
        }
        if !self.metadata.is_object() {
            return Err(EntryError::new("metadata", "must be a JSON object"));
        }
        if postings < 2 {
            return Err(EntryError::new(
                "postings",
                "an entry needs at least two postings",
            ));
        }
        if postings > MAX_POSTINGS {
            return Err(EntryError::new(
                "postings",
                format!("at most {MAX_POSTINGS} postings"),
            ));
        }
        Ok(())
    }

    fn check_balanced(&self) -> Result<(), EntryError> {
        // i128: no sum of at most MAX_POSTINGS i64 amounts overflows it.
        let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
        for posting in &self.postings {
            *sums.entry(posting.currency).or_default() += i128::from(posting.amount);
        }
        if let Some((currency, sum)) = sums.iter().find(|(_, sum)| **sum != 0) {
            return Err(EntryError::new(
                "postings",
                format!(
                    "postings in {currency} sum to {sum}, not zero; every currency must balance on its own"
                ),
            ));
        }
        Ok(())
    }

    /// The reversal of `original`: same postings with opposite signs.
    pub fn reversal_of(id: Uuid, original: &super::PostedEntry, now: OffsetDateTime) -> Self {
        Self {
            id,
            description: format!("Reversal of {}", original.id),
            effective_at: now,
            postings: original
                .postings
                .iter()
                .map(|p| PostingDraft {
                    account_id: p.account_id,
                    amount: -p.amount,
                    currency: p.currency,
                })
                .collect(),
            metadata: empty_object(),
        }
    }
}
