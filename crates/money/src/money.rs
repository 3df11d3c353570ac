//! An amount of money: integer minor units with their currency; checked
//! arithmetic, display formatting; no floats anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Currency, MoneyError};

/// Minor units (cents for EUR, yen for JPY, fils for KWD) with their
/// currency. Any sign: a ledger posting is negative on the credit side.
///
/// On the wire: `{"amount": 1250, "currency": "EUR"}`, the amount an
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// A strictly positive amount (what a payment or a refund is).
    pub fn positive(amount: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount <= 0 {
            return Err(MoneyError::NotPositive(amount));
        }
        Ok(Self::new(amount, currency))
    }

    pub const fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// Minor units.
    pub const fn amount(self) -> i64 {
        self.amount
    }

    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// `self + other`; both in the same currency, no overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, currency))
    }

    /// `self - other`; both in the same currency, no overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, currency))
    }

    /// `-self`; fails only for the smallest `i64`.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Self::new(amount, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    /// The amount in major units with `separator` before the minor-unit
    /// digits, without the currency: `12.34`, `-0.05`, `500` (JPY).
    pub fn decimal(self, separator: char) -> String {
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let factor = self.currency.minor_per_major();
        format!(
            "{sign}{}{separator}{:0width$}",
            abs / factor,
            abs % factor,
            width = usize::from(exponent)
        )
    }

    /// For a reader of `locale` (`en`, `de-DE`): `12.34 EUR` in English,
    /// `12,34 EUR` in German. The code rather than a symbol, so that no
    /// amount is ambiguous (`$`).
    pub fn localized(self, locale: &str) -> String {
        // German is the only decimal-comma language the templates have.
        let separator = if locale.starts_with("de") { ',' } else { '.' };
        format!("{} {}", self.decimal(separator), self.currency)
    }
}

/// `12.34 EUR`: the amount with a decimal point, then the code. [`FromStr`]
/// reads it back.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal('.'), self.currency)
    }
}

/// Reads what [`Display`](fmt::Display) writes: `-12.34 EUR`, `500 JPY`,
/// with exactly the currency's number of decimals.
impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || MoneyError::Malformed(s.to_owned());
        let (number, code) = s.split_once(' ').ok_or_else(malformed)?;
        let currency = Currency::parse(code)?;
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let exponent = usize::from(currency.exponent());
        let (major, minor) = match digits.split_once('.') {
            Some((major, minor)) if exponent > 0 && minor.len() == exponent => (major, minor),
            None if exponent == 0 => (digits, ""),
            _ => return Err(malformed()),
        };
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if major.is_empty() || !all_digits(major) || !all_digits(minor) {
            return Err(malformed());
        }
        // i128 holds any digit string that can still fit an i64 after
        // scaling; longer ones overflow in the parse.
        let major: i128 = major.parse().map_err(|_| MoneyError::Overflow)?;
        let minor: i128 = if minor.is_empty() {
            0
        } else {
            minor.parse().map_err(|_| malformed())?
        };
        let magnitude = major
            .checked_mul(i128::from(currency.minor_per_major()))
            .and_then(|m| m.checked_add(minor))
            .ok_or(MoneyError::Overflow)?;
        let signed = if negative { -magnitude } else { magnitude };
        let amount = i64::try_from(signed).map_err(|_| MoneyError::Overflow)?;
        Ok(Self::new(amount, currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    #[test]
    fn zero_and_negative_amounts_are_not_positive() {
        assert_eq!(
            Money::positive(0, Currency::EUR),
            Err(MoneyError::NotPositive(0))
        );
        assert_eq!(
            Money::positive(-5, Currency::EUR),
            Err(MoneyError::NotPositive(-5))
        );
        assert_eq!(Money::positive(1, Currency::EUR).unwrap().amount(), 1);
    }

    /// Communication's receipts assert these strings.
    #[test]
    fn amounts_are_formatted_per_currency_and_locale() {
        assert_eq!(eur(1234).localized("en"), "12.34 EUR");
        assert_eq!(eur(1205).localized("de"), "12,05 EUR");
        assert_eq!(eur(1205).localized("de-AT"), "12,05 EUR");
        assert_eq!(Money::new(500, Currency::JPY).localized("en"), "500 JPY");
        assert_eq!(Money::new(500, Currency::JPY).localized("de"), "500 JPY");
        assert_eq!(Money::new(1, Currency::KWD).localized("en"), "0.001 KWD");
        assert_eq!(
            Money::new(12345, Currency::CLF).localized("en"),
            "1.2345 CLF"
        );
        assert_eq!(eur(-5).localized("en"), "-0.05 EUR");
        assert_eq!(eur(i64::MIN).to_string(), "-92233720368547758.08 EUR");
        assert_eq!(eur(1250).decimal('.'), "12.50");
    }

    #[test]
    fn the_display_form_parses_back_and_nothing_else_does() {
        assert_eq!("12.34 EUR".parse(), Ok(eur(1234)));
        assert_eq!("-0.05 EUR".parse(), Ok(eur(-5)));
        assert_eq!("500 JPY".parse(), Ok(Money::new(500, Currency::JPY)));
        for bad in [
            "12.3 EUR",
            "12 EUR",
            "12.345 EUR",
            "12,34 EUR",
            "12.34",
            "EUR",
            ".34 EUR",
            "+1.00 EUR",
            "1.00  EUR",
            "5.0 JPY",
            "1.-1 EUR",
            "",
        ] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "1.00 eur".parse::<Money>(),
            Err(MoneyError::UnknownCurrency("eur".into()))
        );
        assert_eq!(
            "92233720368547758.08 EUR".parse::<Money>(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            "-92233720368547758.08 EUR".parse::<Money>(),
            Ok(eur(i64::MIN))
        );
    }

    #[test]
    fn arithmetic_is_checked_for_currency_and_overflow() {
        assert_eq!(eur(5).checked_add(eur(7)), Ok(eur(12)));
        assert_eq!(eur(5).checked_sub(eur(7)), Ok(eur(-2)));
        assert_eq!(
            eur(5).checked_add(Money::new(5, Currency::USD)),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::EUR,
                right: Currency::USD
            })
        );
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MIN).checked_sub(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(eur(3).checked_neg(), Ok(eur(-3)));
    }

    #[test]
    fn money_is_an_integer_amount_and_a_code_on_the_wire() {
        let json = serde_json::to_value(eur(1250)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "amount": 1250, "currency": "EUR" })
        );
        assert!(
            serde_json::from_value::<Money>(
                serde_json::json!({ "amount": 1.5, "currency": "EUR" })
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<Money>(serde_json::json!({ "amount": 1, "currency": "eur" }))
                .is_err()
        );
    }
}
