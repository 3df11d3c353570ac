//! Entries and accounts as the API receives them, validated before any SQL.

use std::collections::BTreeMap;

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

pub fn validate_currency_code(field: &str, code: &str) -> Result<(), EntryError> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(EntryError::new(
            field,
            "must be an ISO 4217 code such as EUR",
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
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

impl NewAccount {
    pub fn validate(&self) -> Result<(), EntryError> {
        let code_ok = !self.code.is_empty()
            && self.code.len() <= 128
            && self
                .code
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b));
        if !code_ok {
            return Err(EntryError::new(
                "code",
                "1-128 characters of a-z, 0-9, '_', '.', ':', '-'",
            ));
        }
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(EntryError::new("name", "1-200 characters"));
        }
        validate_currency_code("currency", &self.currency)?;
        if let (Some(min), Some(max)) = (self.min_balance, self.max_balance)
            && min > max
        {
            return Err(EntryError::new(
                "max_balance",
                "must not be below min_balance",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostingDraft {
    pub account_id: Uuid,
    /// Minor units; debit positive, credit negative.
    pub amount: i64,
    pub currency: String,
}

/// A journal entry as submitted. The client chooses `id`: posting the same
/// id again is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDraft {
    pub id: Uuid,
    #[serde(default)]
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    pub effective_at: OffsetDateTime,
    pub postings: Vec<PostingDraft>,
    #[serde(default = "empty_object")]
    pub metadata: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

pub const MAX_POSTINGS: usize = 1000;

impl EntryDraft {
    /// Checks everything that can be checked without the database: at least
    /// two postings, no zero amounts, and a zero sum in every currency (an
    /// entry across currencies needs FX legs that balance in each).
    pub fn validate(&self) -> Result<(), EntryError> {
        if self.description.len() > 500 {
            return Err(EntryError::new("description", "at most 500 characters"));
        }
        if !self.metadata.is_object() {
            return Err(EntryError::new("metadata", "must be a JSON object"));
        }
        if self.postings.len() < 2 {
            return Err(EntryError::new(
                "postings",
                "an entry needs at least two postings",
            ));
        }
        if self.postings.len() > MAX_POSTINGS {
            return Err(EntryError::new(
                "postings",
                format!("at most {MAX_POSTINGS} postings"),
            ));
        }
        let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
        for (i, posting) in self.postings.iter().enumerate() {
            if posting.amount == 0 {
                return Err(EntryError::new(
                    format!("postings[{i}].amount"),
                    "must not be zero",
                ));
            }
            validate_currency_code(&format!("postings[{i}].currency"), &posting.currency)?;
            *sums.entry(posting.currency.as_str()).or_default() += i128::from(posting.amount);
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
                    currency: p.currency.clone(),
                })
                .collect(),
            metadata: empty_object(),
        }
    }
}
