//! Money in integer minor units with an ISO 4217 currency; no floats anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency {0:?} (ISO 4217 alphabetic code expected)")]
    UnknownCurrency(String),
    #[error("amount must be a positive number of minor units, got {0}")]
    NotPositive(i64),
}

/// An ISO 4217 currency this platform accepts, with its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

/// ISO 4217 codes with their exponents. Extend as markets open.
const CURRENCIES: &[(&str, u8)] = &[
    ("CHF", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HUF", 2),
    ("JPY", 0),
    ("KWD", 3),
    ("NOK", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("USD", 2),
];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(code, exponent)| Self { code, exponent })
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Number of minor-unit digits (EUR 2, JPY 0, KWD 3).
    pub fn exponent(self) -> u8 {
        self.exponent
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.code.to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// A strictly positive amount of money in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMoney")]
pub struct Money {
    /// Minor units (cents for EUR, yen for JPY, fils for KWD).
    amount: i64,
    currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount <= 0 {
            return Err(MoneyError::NotPositive(amount));
        }
        Ok(Self { amount, currency })
    }

    pub fn amount(self) -> i64 {
        self.amount
    }

    pub fn currency(self) -> Currency {
        self.currency
    }
}

/// Unvalidated wire form; only [`Money::new`] turns it into a `Money`.
#[derive(Deserialize)]
struct RawMoney {
    amount: i64,
    currency: Currency,
}

impl TryFrom<RawMoney> for Money {
    type Error = MoneyError;
    fn try_from(raw: RawMoney) -> Result<Self, Self::Error> {
        Self::new(raw.amount, raw.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn unknown_and_lowercase_codes_are_rejected() {
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn zero_and_negative_amounts_are_rejected() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(Money::new(0, eur), Err(MoneyError::NotPositive(0)));
        assert_eq!(Money::new(-5, eur), Err(MoneyError::NotPositive(-5)));
        assert_eq!(Money::new(1, eur).unwrap().amount(), 1);
    }

    #[test]
    fn currency_round_trips_through_json_as_its_code() {
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(serde_json::to_string(&eur).unwrap(), "\"EUR\"");
        assert!(serde_json::from_str::<Currency>("\"ABC\"").is_err());
    }
}
