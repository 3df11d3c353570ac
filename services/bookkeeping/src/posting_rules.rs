//! How payment events become ledger entries (docs/chart-of-accounts.md).
//!
//! | event | debit | credit |
//! |---|---|---|
//! | `payments.payment.succeeded` | `asset:psp-clearing:<cur>` | `revenue:sales:<cur>` |
//! | `payments.refund.succeeded` | `revenue:refunds:<cur>` | `asset:psp-clearing:<cur>` |
//!
//! Accounts are created on first use with ids derived from their codes, and
//! an entry's id is derived from the event's `(source, id)`, so the same
//! event always yields the same entry.

use platform_money::{Currency, Money};
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ledger::{AccountKind, EntryDraft, PostingDraft};

/// Namespace of the ids this service derives (UUIDv5), published in
/// contracts/openapi/bookkeeping.yaml (`info.x-uuid-namespace`) so that a
/// client can compute a system account's id from its code.
pub const NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_5a0e_8d1b_4c55_9e0f_b0a4_5d2c_7e11);

/// A system account an entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemAccount {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub kind: AccountKind,
    pub currency: Currency,
}

impl SystemAccount {
    fn new(prefix: &str, name: &str, kind: AccountKind, currency: Currency) -> Self {
        let code = format!("{prefix}:{}", currency.as_str().to_ascii_lowercase());
        Self {
            id: Uuid::new_v5(&NAMESPACE, code.as_bytes()),
            code,
            name: format!("{name} ({currency})"),
            kind,
            currency,
        }
    }

    fn psp_clearing(currency: Currency) -> Self {
        Self::new(
            "asset:psp-clearing",
            "PSP clearing",
            AccountKind::Asset,
            currency,
        )
    }

    fn sales(currency: Currency) -> Self {
        Self::new("revenue:sales", "Sales", AccountKind::Revenue, currency)
    }

    fn refunds(currency: Currency) -> Self {
        Self::new("revenue:refunds", "Refunds", AccountKind::Revenue, currency)
    }
}

/// Why an event can never be booked. Goes to the dead-letter topic with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

// Event data as the contracts write it; `money()` parses amount and currency,
// amount first, so that a bad one is rejected with the reason it always was.

#[derive(Debug, Deserialize)]
struct PaymentSucceeded {
    payment_id: String,
    amount: i64,
    currency: String,
    customer_reference: String,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
}

#[derive(Debug, Deserialize)]
struct RefundSucceeded {
    refund_id: String,
    payment_id: String,
    amount: i64,
    currency: String,
    customer_reference: String,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
}

/// What to book for one event: the accounts to ensure, then the entry.
#[derive(Debug, Clone)]
pub struct Booking {
    pub accounts: Vec<SystemAccount>,
    pub entry: EntryDraft,
}

/// Event types this service consumes (recorded in the inbox); others on the
/// topic are acknowledged and ignored, so producers can add types first.
pub fn consumes(event_type: &str) -> bool {
    CONSUMED_TYPES.contains(&event_type)
}

/// Each has a schema in contracts/events/<type>.schema.json.
pub const CONSUMED_TYPES: [&str; 3] = [
    "payments.payment.created",
    "payments.payment.succeeded",
    "payments.refund.succeeded",
];

#[derive(Debug, Deserialize)]
#[expect(
    dead_code,
    reason = "read to validate the event; created payments have no ledger effect yet"
)]
struct PaymentCreated {
    payment_id: String,
    amount: i64,
    currency: String,
}

/// The booking for a consumed event; `Ok(None)` when it has no ledger effect.
pub fn booking_for(
    source: &str,
    id: &str,
    event_type: &str,
    data: &serde_json::Value,
) -> Result<Option<Booking>, Rejection> {
    let entry_id = Uuid::new_v5(&NAMESPACE, format!("{source}/{id}").as_bytes());
    match event_type {
        "payments.payment.succeeded" => {
            let e: PaymentSucceeded = parse(data)?;
            let money = money(e.amount, &e.currency)?;
            let clearing = SystemAccount::psp_clearing(money.currency());
            let sales = SystemAccount::sales(money.currency());
            let entry = entry(
                entry_id,
                format!("Payment {}", e.payment_id),
                e.occurred_at,
                &clearing,
                &sales,
                money,
                serde_json::json!({ "event_source": source, "event_id": id, "payment_id": e.payment_id, "customer_reference": e.customer_reference }),
            );
            Ok(Some(Booking {
                accounts: vec![clearing, sales],
                entry,
            }))
        }
        "payments.refund.succeeded" => {
            let e: RefundSucceeded = parse(data)?;
            let money = money(e.amount, &e.currency)?;
            let refunds = SystemAccount::refunds(money.currency());
            let clearing = SystemAccount::psp_clearing(money.currency());
            let entry = entry(
                entry_id,
                format!("Refund {} of payment {}", e.refund_id, e.payment_id),
                e.occurred_at,
                &refunds,
                &clearing,
                money,
                serde_json::json!({ "event_source": source, "event_id": id, "payment_id": e.payment_id, "refund_id": e.refund_id, "customer_reference": e.customer_reference }),
            );
            Ok(Some(Booking {
                accounts: vec![refunds, clearing],
                entry,
            }))
        }
        "payments.payment.created" => {
            let e: PaymentCreated = parse(data)?;
            money(e.amount, &e.currency)?;
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn parse<T: serde::de::DeserializeOwned>(data: &serde_json::Value) -> Result<T, Rejection> {
    T::deserialize(data)
        .map_err(|e| Rejection(format!("data does not match the event schema: {e}")))
}

/// The event's amount: positive minor units in a known currency.
fn money(amount: i64, currency: &str) -> Result<Money, Rejection> {
    if amount <= 0 {
        return Err(Rejection(format!("amount must be positive, got {amount}")));
    }
    let currency = Currency::parse(currency)
        .map_err(|_| Rejection("currency: must be an ISO 4217 code such as EUR".into()))?;
    Ok(Money::new(amount, currency))
}

fn entry(
    id: Uuid,
    description: String,
    effective_at: OffsetDateTime,
    debit: &SystemAccount,
    credit: &SystemAccount,
    money: Money,
    metadata: serde_json::Value,
) -> EntryDraft {
    EntryDraft {
        id,
        description,
        effective_at,
        postings: vec![
            PostingDraft {
                account_id: debit.id,
                amount: money.amount(),
                currency: money.currency(),
            },
            PostingDraft {
                account_id: credit.id,
                amount: -money.amount(),
                currency: money.currency(),
            },
        ],
        metadata,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn succeeded(amount: i64) -> serde_json::Value {
        json!({ "payment_id": "p1", "amount": amount, "currency": "EUR", "customer_reference": "c1", "occurred_at": "2026-11-26T10:00:00Z" })
    }

    #[test]
    fn a_succeeded_payment_debits_clearing_and_credits_sales() {
        let booking = booking_for(
            "payments",
            "e1",
            "payments.payment.succeeded",
            &succeeded(1250),
        )
        .unwrap()
        .unwrap();
        assert_eq!(booking.entry.validate(), Ok(()));
        assert_eq!(booking.accounts[0].code, "asset:psp-clearing:eur");
        assert_eq!(booking.entry.postings[0].account_id, booking.accounts[0].id);
        assert_eq!(booking.entry.postings[0].amount, 1250);
        assert_eq!(booking.accounts[1].code, "revenue:sales:eur");
        assert_eq!(booking.entry.postings[1].amount, -1250);
    }

    #[test]
    fn the_same_event_always_yields_the_same_entry_id_and_accounts() {
        let a = booking_for(
            "payments",
            "e1",
            "payments.payment.succeeded",
            &succeeded(5),
        )
        .unwrap()
        .unwrap();
        let b = booking_for(
            "payments",
            "e1",
            "payments.payment.succeeded",
            &succeeded(5),
        )
        .unwrap()
        .unwrap();
        let c = booking_for(
            "payments",
            "e2",
            "payments.payment.succeeded",
            &succeeded(5),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.entry.id, b.entry.id);
        assert_ne!(a.entry.id, c.entry.id);
        assert_eq!(a.accounts, c.accounts);
    }

    #[test]
    fn a_refund_reverses_the_direction() {
        let data = json!({ "refund_id": "r1", "payment_id": "p1", "amount": 300, "currency": "JPY", "customer_reference": "c1", "occurred_at": "2026-11-26T10:00:00Z" });
        let booking = booking_for("payments", "e3", "payments.refund.succeeded", &data)
            .unwrap()
            .unwrap();
        assert_eq!(booking.accounts[0].code, "revenue:refunds:jpy");
        assert_eq!(booking.entry.postings[1].account_id, booking.accounts[1].id);
        assert_eq!(booking.entry.postings[1].amount, -300);
    }

    /// The consumer reads what the contract promises: every field this
    /// consumer requires is required by the published schema.
    #[test]
    fn consumed_types_have_contracts_that_require_what_we_read() {
        let required_by_us: [(&str, &[&str]); 3] = [
            (
                "payments.payment.created",
                &["payment_id", "amount", "currency"],
            ),
            (
                "payments.payment.succeeded",
                &[
                    "payment_id",
                    "amount",
                    "currency",
                    "customer_reference",
                    "occurred_at",
                ],
            ),
            (
                "payments.refund.succeeded",
                &[
                    "refund_id",
                    "payment_id",
                    "amount",
                    "currency",
                    "customer_reference",
                    "occurred_at",
                ],
            ),
        ];
        for (event_type, fields) in required_by_us {
            assert!(CONSUMED_TYPES.contains(&event_type));
            let path = format!(
                "{}/../../contracts/events/{event_type}.schema.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let schema: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            for field in fields {
                assert!(
                    required.contains(field),
                    "{event_type}: the contract does not require {field}"
                );
            }
        }
    }

    #[test]
    fn invalid_events_are_rejected_with_a_reason_and_other_types_ignored() {
        assert!(
            booking_for("payments", "e", "payments.payment.succeeded", &succeeded(0))
                .unwrap_err()
                .0
                .contains("positive")
        );
        assert!(
            booking_for(
                "payments",
                "e",
                "payments.payment.succeeded",
                &json!({"amount": 1})
            )
            .unwrap_err()
            .0
            .contains("schema")
        );
        assert!(
            booking_for("payments", "e", "payments.payment.created", &succeeded(1))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_unknown_currency_is_rejected_after_the_amount() {
        let mut data = succeeded(1);
        data["currency"] = json!("eur");
        let reason = booking_for("payments", "e", "payments.payment.succeeded", &data)
            .unwrap_err()
            .0;
        assert_eq!(reason, "currency: must be an ISO 4217 code such as EUR");
        data["amount"] = json!(0);
        let reason = booking_for("payments", "e", "payments.payment.succeeded", &data)
            .unwrap_err()
            .0;
        assert_eq!(reason, "amount must be positive, got 0");
    }

    #[test]
    fn system_accounts_are_named_after_the_currency_code() {
        let clearing = SystemAccount::psp_clearing(Currency::KWD);
        assert_eq!(clearing.code, "asset:psp-clearing:kwd");
        assert_eq!(clearing.name, "PSP clearing (KWD)");
        assert_eq!(clearing.currency, Currency::KWD);
    }
}
