use time::OffsetDateTime;
use uuid::Uuid;

use super::*;

fn posting(amount: i64, currency: &str) -> PostingRequest {
    PostingRequest {
        account_id: Uuid::new_v4(),
        amount,
        currency: currency.into(),
    }
}

fn draft(postings: Vec<PostingRequest>) -> EntryRequest {
    EntryRequest {
        id: Uuid::new_v4(),
        description: "test".into(),
        effective_at: OffsetDateTime::UNIX_EPOCH,
        postings,
        metadata: serde_json::json!({}),
    }
}

/// Parsed as the API parses it, then validated as any draft is.
fn validate(request: EntryRequest) -> Result<(), EntryError> {
    request.parse()?.validate()
}

#[test]
fn a_balanced_entry_is_valid() {
    assert_eq!(
        validate(draft(vec![posting(100, "EUR"), posting(-100, "EUR")])),
        Ok(())
    );
}

#[test]
fn fx_legs_that_balance_per_currency_are_valid() {
    let fx = draft(vec![
        posting(100, "EUR"),
        posting(-100, "EUR"),
        posting(-110, "USD"),
        posting(110, "USD"),
    ]);
    assert_eq!(validate(fx), Ok(()));
}

#[test]
fn a_cross_currency_entry_without_fx_legs_is_invalid() {
    let err = validate(draft(vec![posting(100, "EUR"), posting(-100, "USD")])).unwrap_err();
    assert_eq!(err.field, "postings");
}

#[test]
fn one_posting_zero_amounts_and_bad_currencies_are_invalid() {
    assert_eq!(
        validate(draft(vec![posting(100, "EUR")]))
            .unwrap_err()
            .field,
        "postings"
    );
    assert_eq!(
        validate(draft(vec![posting(0, "EUR"), posting(0, "EUR")]))
            .unwrap_err()
            .field,
        "postings[0].amount"
    );
    assert_eq!(
        validate(draft(vec![posting(1, "EUR"), posting(-1, "eur")]))
            .unwrap_err()
            .field,
        "postings[1].currency"
    );
    // ISO 4217, but without minor units: no amount can be in it.
    assert_eq!(
        validate(draft(vec![posting(1, "XXX"), posting(-1, "XXX")]))
            .unwrap_err()
            .field,
        "postings[0].currency"
    );
}

#[test]
fn extreme_amounts_do_not_overflow_the_sum() {
    let e = draft(vec![
        posting(i64::MAX, "EUR"),
        posting(i64::MAX, "EUR"),
        posting(i64::MIN, "EUR"),
        posting(i64::MIN, "EUR"),
    ]);
    // MAX+MAX+MIN+MIN = -2: unbalanced, detected without overflow.
    assert_eq!(validate(e).unwrap_err().field, "postings");
}

#[test]
fn normal_signs_follow_the_account_kind() {
    assert_eq!(AccountKind::Asset.normal_sign(), 1);
    assert_eq!(AccountKind::Expense.normal_sign(), 1);
    assert_eq!(AccountKind::Liability.normal_sign(), -1);
    assert_eq!(AccountKind::Revenue.normal_sign(), -1);
    assert_eq!(AccountKind::Equity.normal_sign(), -1);
}

#[test]
fn account_min_balance_absent_means_no_overdraft_and_null_allows_it() {
    let base = r#"{"id":"0193f5a4-0000-7000-8000-000000000001","code":"asset:cash","name":"Cash","kind":"asset","currency":"EUR""#;
    let absent: AccountRequest = serde_json::from_str(&format!("{base}}}")).unwrap();
    assert_eq!(absent.parse().unwrap().min_balance, Some(0));
    let null: AccountRequest =
        serde_json::from_str(&format!(r#"{base},"min_balance":null}}"#)).unwrap();
    assert_eq!(null.parse().unwrap().min_balance, None);
}

#[test]
fn an_account_currency_is_parsed_and_named_when_invalid() {
    let request = |currency: &str| AccountRequest {
        id: Uuid::new_v4(),
        code: "asset:cash".into(),
        name: "Cash".into(),
        kind: AccountKind::Asset,
        currency: currency.into(),
        min_balance: Some(0),
        max_balance: None,
    };
    assert_eq!(
        request("JPY").parse().unwrap().currency,
        platform_money::Currency::JPY
    );
    for bad in ["jpy", "XXX", "JP"] {
        assert_eq!(request(bad).parse().unwrap_err().field, "currency", "{bad}");
    }
}
