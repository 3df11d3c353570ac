//! Money for the whole platform: [`Currency`] (ISO 4217, with its
//! minor-unit exponent: the one table every service reads) and [`Money`]
//! (integer minor units with their currency, checked arithmetic, display
//! formatting). No floats anywhere.
//!
//! Wire formats are the ones the contracts describe: an amount is a JSON
//! integer of minor units, a currency the uppercase code string. With the
//! `sqlx` feature a [`Currency`] binds to and decodes from a PostgreSQL text
//! column (`text`, `char(3)`), arrays included.

mod currency;
mod money;
#[cfg(feature = "sqlx")]
mod postgres;

pub use currency::Currency;
pub use money::Money;

/// Why a currency or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency {0:?} (ISO 4217 alphabetic code expected)")]
    UnknownCurrency(String),
    #[error("amount must be a positive number of minor units, got {0}")]
    NotPositive(i64),
    #[error("cannot combine amounts in {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("the amount does not fit in 64-bit minor units")]
    Overflow,
    #[error("{0:?} is not an amount like \"12.34 EUR\"")]
    Malformed(String),
}
