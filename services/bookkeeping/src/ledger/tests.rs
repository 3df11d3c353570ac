use time::OffsetDateTime;
use uuid::Uuid;

use super::*;

fn posting(amount: i64, currency: &str) -> PostingDraft {
    PostingDraft {
        account_id: Uuid::new_v4(),
        amount,
        currency: currency.into(),
    }
}

fn draft(postings: Vec<PostingDraft>) -> EntryDraft {
    EntryDraft {
        id: Uuid::new_v4(),
        description: "test".into(),
        effective_at: OffsetDateTime::UNIX_EPOCH,
        postings,
        metadata: serde_json::json!({}),
    }
}

#[test]
fn a_balanced_entry_is_valid() {
    assert_eq!(
        draft(vec![posting(100, "EUR"), posting(-100, "EUR")]).validate(),
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
    assert_eq!(fx.validate(), Ok(()));
}

#[test]
fn a_cross_currency_entry_without_fx_legs_is_invalid() {
    let err = draft(vec![posting(100, "EUR"), posting(-100, "USD")])
        .validate()
        .unwrap_err();
    assert_eq!(err.field, "postings");
}

#[test]
fn one_posting_zero_amounts_and_bad_currencies_are_invalid() {
    assert_eq!(
        draft(vec![posting(100, "EUR")])
            .validate()
            .unwrap_err()
            .field,
        "postings"
    );
    assert_eq!(
        draft(vec![posting(0, "EUR"), posting(0, "EUR")])
            .validate()
            .unwrap_err()
            .field,
        "postings[0].amount"
    );
    assert_eq!(
        draft(vec![posting(1, "EUR"), posting(-1, "eur")])
            .validate()
            .unwrap_err()
            .field,
        "postings[1].currency"
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
    assert_eq!(e.validate().unwrap_err().field, "postings");
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
    let absent: NewAccount = serde_json::from_str(&format!("{base}}}")).unwrap();
    assert_eq!(absent.min_balance, Some(0));
    let null: NewAccount =
        serde_json::from_str(&format!(r#"{base},"min_balance":null}}"#)).unwrap();
    assert_eq!(null.min_balance, None);
}
