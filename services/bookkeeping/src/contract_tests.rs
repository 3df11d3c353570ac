//! The event contracts from bookkeeping's side as a consumer: every example
//! of every type on the `payments` channel (contracts/events/<type>.schema.json
//! `examples`, contracts/asyncapi.yaml) is booked or ignored, never
//! rejected; a type it does not know is ignored (acknowledged, no effect).

use std::collections::BTreeSet;

use platform_event_contracts::asyncapi::{channels, document};
use platform_event_contracts::examples;
use serde_json::json;

use crate::posting_rules::{CONSUMED_TYPES, booking_for, consumes};

fn payments_channel() -> BTreeSet<String> {
    channels(&document())["payments"].clone()
}

#[test]
fn every_example_on_the_payments_channel_is_booked_or_ignored_never_rejected() {
    let mut booked = 0;
    for event_type in payments_channel() {
        let examples = examples(&event_type);
        assert!(!examples.is_empty(), "{event_type}: no examples");
        for (i, example) in examples.iter().enumerate() {
            let booking = booking_for("payments", &format!("example-{i}"), &event_type, example)
                .unwrap_or_else(|r| panic!("{event_type} example {i} rejected: {r}"));
            let has_ledger_effect = matches!(
                event_type.as_str(),
                "payments.payment.succeeded" | "payments.refund.succeeded"
            );
            assert_eq!(
                booking.is_some(),
                has_ledger_effect,
                "{event_type} example {i}"
            );
            if let Some(booking) = booking {
                assert_eq!(
                    booking.entry.postings.len(),
                    2,
                    "{event_type}: one debit, one credit"
                );
                booked += 1;
            }
        }
    }
    assert!(booked >= 3, "the examples exercise the posting rules");
}

#[test]
fn every_consumed_type_is_published_on_the_payments_channel() {
    let channel = payments_channel();
    for event_type in CONSUMED_TYPES {
        assert!(channel.contains(event_type), "{event_type}");
    }
}

#[test]
fn an_unknown_type_is_ignored_not_rejected() {
    assert!(!consumes("payments.payment.teleported"));
    assert!(
        booking_for("payments", "e1", "payments.payment.teleported", &json!({}))
            .unwrap()
            .is_none()
    );
}
