//! Property tests: arithmetic agrees with exact (i128) arithmetic or says
//! why not, and every parse/format pair round-trips.

use platform_money::{Currency, Money, MoneyError};
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::all())
}

/// Mostly ordinary amounts, sometimes the extremes where overflow lives.
fn amount() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -1_000_000_000i64..1_000_000_000,
        2 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
    ]
}

fn money() -> impl Strategy<Value = Money> {
    (amount(), currency()).prop_map(|(a, c)| Money::new(a, c))
}

proptest! {
    #[test]
    fn addition_is_exact_or_an_overflow(a in amount(), b in amount(), c in currency()) {
        let exact = i128::from(a) + i128::from(b);
        let sum = Money::new(a, c).checked_add(Money::new(b, c));
        match i64::try_from(exact) {
            Ok(expected) => prop_assert_eq!(&sum, &Ok(Money::new(expected, c))),
            Err(_) => prop_assert_eq!(&sum, &Err(MoneyError::Overflow)),
        }
        prop_assert_eq!(sum, Money::new(b, c).checked_add(Money::new(a, c)));
    }

    #[test]
    fn subtraction_is_exact_or_an_overflow_and_undoes_addition(a in amount(), b in amount(), c in currency()) {
        let exact = i128::from(a) - i128::from(b);
        let difference = Money::new(a, c).checked_sub(Money::new(b, c));
        match i64::try_from(exact) {
            Ok(expected) => prop_assert_eq!(difference, Ok(Money::new(expected, c))),
            Err(_) => prop_assert_eq!(difference, Err(MoneyError::Overflow)),
        }
        if let Ok(sum) = Money::new(a, c).checked_add(Money::new(b, c)) {
            prop_assert_eq!(sum.checked_sub(Money::new(b, c)), Ok(Money::new(a, c)));
        }
    }

    #[test]
    fn negation_is_exact_or_an_overflow(m in money()) {
        match m.checked_neg() {
            Ok(n) => {
                prop_assert_eq!(i128::from(n.amount()), -i128::from(m.amount()));
                prop_assert_eq!(n.checked_neg(), Ok(m));
            }
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow);
                prop_assert_eq!(m.amount(), i64::MIN);
            }
        }
    }

    #[test]
    fn different_currencies_never_combine(a in money(), b in money()) {
        prop_assume!(a.currency() != b.currency());
        let mismatch = Err(MoneyError::CurrencyMismatch { left: a.currency(), right: b.currency() });
        prop_assert_eq!(a.checked_add(b), mismatch.clone());
        prop_assert_eq!(a.checked_sub(b), mismatch);
    }

    #[test]
    fn positive_means_more_than_zero(a in amount(), c in currency()) {
        let positive = Money::positive(a, c);
        prop_assert_eq!(positive.is_ok(), a > 0);
        if a <= 0 {
            prop_assert_eq!(positive, Err(MoneyError::NotPositive(a)));
        }
    }

    #[test]
    fn display_parses_back(m in money()) {
        let shown = m.to_string();
        prop_assert_eq!(shown.parse::<Money>(), Ok(m), "{}", shown);
    }

    #[test]
    fn decimals_have_the_currency_exponent_and_the_same_value(m in money(), locale in prop::sample::select(vec!["en", "en-GB", "de", "de-DE", "fr"])) {
        let separator = if locale.starts_with("de") { ',' } else { '.' };
        let shown = m.localized(locale);
        let (number, code) = shown.split_once(' ').unwrap();
        prop_assert_eq!(code, m.currency().as_str());
        let exponent = usize::from(m.currency().exponent());
        match number.split_once(separator) {
            Some((_, minor)) => prop_assert_eq!(minor.len(), exponent),
            None => prop_assert_eq!(exponent, 0),
        }
        // The same digits with a point are the canonical form.
        prop_assert_eq!(shown.replacen(separator, ".", 1).parse::<Money>(), Ok(m));
    }

    #[test]
    fn money_round_trips_through_json_with_an_integer_amount(m in money()) {
        let json = serde_json::to_value(m).unwrap();
        prop_assert_eq!(json["amount"].as_i64(), Some(m.amount()));
        prop_assert_eq!(json["currency"].as_str(), Some(m.currency().as_str()));
        prop_assert_eq!(serde_json::from_value::<Money>(json).unwrap(), m);
    }

    #[test]
    fn a_code_parses_exactly_when_it_is_in_the_table(code in "[A-Za-z]{0,4}") {
        let known = Currency::all().iter().find(|c| c.as_str() == code).copied();
        match Currency::parse(&code) {
            Ok(c) => {
                prop_assert_eq!(Some(c), known);
                prop_assert_eq!(c.as_str(), code.as_str());
                prop_assert_eq!(c.to_string(), code.clone());
                prop_assert_eq!(serde_json::to_value(c).unwrap(), serde_json::Value::String(code));
            }
            Err(e) => {
                prop_assert_eq!(known, None);
                prop_assert_eq!(e, MoneyError::UnknownCurrency(code));
            }
        }
    }

    #[test]
    fn every_currency_round_trips_through_its_code(c in currency()) {
        prop_assert_eq!(Currency::parse(c.as_str()), Ok(c));
        prop_assert_eq!(serde_json::from_value::<Currency>(serde_json::to_value(c).unwrap()).unwrap(), c);
    }
}
