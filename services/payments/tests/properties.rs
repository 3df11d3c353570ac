//! Property tests of the payment state machine and money: random,
//! duplicated and reordered provider facts never break an invariant, a
//! terminal status never changes and no status ever regresses.

use payments::domain::{
    AuthorizationFact, AuthorizationOutcome, CaptureMethod, DomainEvent, Fact, Payment, PaymentId,
    PaymentStatus, RefundFact, RefundStatus,
};
use platform_money::{Currency, Money};
use proptest::prelude::*;
use time::OffsetDateTime;

const AMOUNT: i64 = 10_000;

fn rank(s: PaymentStatus) -> u8 {
    match s {
        PaymentStatus::RequiresConfirmation => 0,
        PaymentStatus::Processing => 1,
        PaymentStatus::RequiresCapture => 2,
        _ => 3,
    }
}

fn outcome() -> impl Strategy<Value = AuthorizationOutcome> {
    prop_oneof![
        Just(AuthorizationOutcome::Authorized),
        Just(AuthorizationOutcome::Captured),
        Just(AuthorizationOutcome::Voided),
        Just(AuthorizationOutcome::Declined {
            code: "generic_decline".into()
        }),
    ]
}

fn fact() -> impl Strategy<Value = Fact> {
    prop_oneof![
        (1u32..4).prop_map(|attempt| Fact::AttemptStarted { attempt }),
        (
            1u32..4,
            outcome(),
            0i64..=AMOUNT + 10,
            prop::bool::weighted(0.9)
        )
            .prop_map(|(attempt, outcome, captured, right_amount)| {
                Fact::Authorization(AuthorizationFact {
                    attempt,
                    provider_id: Some(format!("auth_{attempt}")),
                    outcome,
                    amount: if right_amount { AMOUNT } else { AMOUNT - 1 },
                    currency: "EUR".into(),
                    captured_amount: captured,
                })
            }),
        (1u32..4).prop_map(|attempt| Fact::AttemptVanished { attempt }),
        (1u32..4).prop_map(|attempt| Fact::AttemptNotSent { attempt }),
        Just(Fact::CanceledBeforeConfirmation),
        (
            1u32..6,
            -5i64..=AMOUNT,
            prop_oneof![
                Just(RefundStatus::Pending),
                Just(RefundStatus::Succeeded),
                Just(RefundStatus::Failed)
            ]
        )
            .prop_map(|(refund, amount, status)| {
                Fact::Refund(RefundFact {
                    refund,
                    provider_id: None,
                    amount,
                    status,
                })
            }),
    ]
}

/// A sequence where facts are repeated and shuffled: what a provider's
/// retried webhooks, status queries and call answers look like.
fn history() -> impl Strategy<Value = Vec<Fact>> {
    prop::collection::vec(fact(), 1..40).prop_flat_map(|facts| {
        let doubled: Vec<Fact> = facts.iter().chain(facts.iter()).cloned().collect();
        Just(doubled).prop_shuffle()
    })
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
fn new_payment(method: CaptureMethod) -> Payment {
    let money = Money::positive(AMOUNT, Currency::EUR).unwrap();
    Payment::create(
        PaymentId::new(),
        money,
        "cus_p".into(),
        method,
        OffsetDateTime::UNIX_EPOCH,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_facts_breaks_an_invariant(facts in history(), manual in any::<bool>()) {
        let method = if manual { CaptureMethod::Manual } else { CaptureMethod::Automatic };
        let mut payment = new_payment(method);
        let mut succeeded_events = 0;
        for fact in &facts {
            let before = payment.clone();
            match payment.apply(fact, OffsetDateTime::UNIX_EPOCH) {
                Ok(Some(event)) => {
                    prop_assert!(!before.status.is_terminal() || before.status == payment.status,
                        "terminal {:?} became {:?}", before.status, payment.status);
                    if matches!(event, DomainEvent::Succeeded(_)) {
                        succeeded_events += 1;
                    }
                }
                Ok(None) | Err(_) => prop_assert_eq!(&payment, &before, "a no-op or error changed the payment"),
            }
            // The one step back: an attempt that certainly never reached the
            // provider is withdrawn, so the payment can be confirmed again.
            let withdrawn = matches!(fact, Fact::AttemptNotSent { .. })
                && before.status == PaymentStatus::Processing
                && payment.status == PaymentStatus::RequiresConfirmation;
            prop_assert!(withdrawn || rank(payment.status) >= rank(before.status), "{:?} regressed to {:?}", before.status, payment.status);
            if before.status.is_terminal() {
                prop_assert_eq!(before.status, payment.status);
            }
            prop_assert_eq!(payment.check_invariants(), Ok(()));
        }
        prop_assert!(succeeded_events <= 1, "payments.payment.succeeded published {} times", succeeded_events);
    }

    #[test]
    fn applying_a_fact_twice_is_the_same_as_once(facts in prop::collection::vec(fact(), 1..20)) {
        let mut once = new_payment(CaptureMethod::Manual);
        let mut twice = once.clone();
        for fact in &facts {
            let a = once.apply(fact, OffsetDateTime::UNIX_EPOCH).ok().flatten();
            let b = twice.apply(fact, OffsetDateTime::UNIX_EPOCH).ok().flatten();
            prop_assert_eq!(a.is_some(), b.is_some());
            let again = twice.apply(fact, OffsetDateTime::UNIX_EPOCH);
            prop_assert!(matches!(again, Ok(None) | Err(_)), "a repeated fact changed the payment again");
            prop_assert_eq!(&once, &twice);
        }
    }

    #[test]
    fn capture_and_refund_checks_never_allow_more_than_is_there(
        captured in 1i64..=AMOUNT,
        requests in prop::collection::vec(1i64..=AMOUNT, 1..10),
    ) {
        let mut payment = new_payment(CaptureMethod::Manual);
        payment.apply(&Fact::Authorization(AuthorizationFact {
            attempt: 1, provider_id: Some("a".into()), outcome: AuthorizationOutcome::Authorized,
            amount: AMOUNT, currency: "EUR".into(), captured_amount: 0,
        }), OffsetDateTime::UNIX_EPOCH).unwrap();
        prop_assert!(payment.check_capture(Some(AMOUNT + 1)).is_err());
        prop_assert_eq!(payment.check_capture(Some(captured)), Ok(captured));
        payment.apply(&Fact::Authorization(AuthorizationFact {
            attempt: 1, provider_id: Some("a".into()), outcome: AuthorizationOutcome::Captured,
            amount: AMOUNT, currency: "EUR".into(), captured_amount: captured,
        }), OffsetDateTime::UNIX_EPOCH).unwrap();
        let mut refunded = 0;
        for amount in requests {
            match payment.check_refund(Some(amount)) {
                Ok((number, amount)) => {
                    prop_assert!(refunded + amount <= captured);
                    let applied = payment.apply(&Fact::Refund(RefundFact {
                        refund: number, provider_id: None, amount, status: RefundStatus::Succeeded,
                    }), OffsetDateTime::UNIX_EPOCH);
                    prop_assert!(matches!(applied, Ok(Some(_))));
                    refunded += amount;
                }
                Err(_) => prop_assert!(refunded + amount > captured),
            }
            prop_assert_eq!(payment.refundable(), captured - refunded);
        }
    }

    #[test]
    fn money_is_positive_minor_units_with_the_currency_exponent(amount in any::<i64>(), code in prop::sample::select(vec!["EUR", "JPY", "KWD", "USD"])) {
        let currency = Currency::parse(code).unwrap();
        let expected_exponent = match code { "JPY" => 0, "KWD" => 3, _ => 2 };
        prop_assert_eq!(currency.exponent(), expected_exponent);
        let money = Money::positive(amount, currency);
        prop_assert_eq!(money.is_ok(), amount > 0);
        if let Ok(m) = money {
            let json = serde_json::to_value(m).unwrap();
            let back: Money = serde_json::from_value(json).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
