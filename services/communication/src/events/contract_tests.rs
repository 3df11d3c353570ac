//! The event contracts from communication's side as a consumer: every
//! example of every type on the channels it subscribes to (`payments`,
//! `bookkeeping`, `bookings`; contracts/asyncapi.yaml) becomes a notification plan when
//! its type is notified, and is ignored otherwise, never rejected; a type
//! nobody knows is ignored. The `bookings` channel counts too: its
//! confirmation, expiry and cancellation messages are planned here.

use platform_event_contracts::asyncapi::{channels, document};
use platform_event_contracts::examples;
use serde_json::{Value, json};

use super::{CloudEvent, NOTIFIED_TYPES, plan};

fn delivered(event_type: &str, data: &Value) -> CloudEvent<Value> {
    serde_json::from_value(json!({
        "specversion": "1.0", "id": "example", "source": "payments",
        "type": event_type, "data": data,
    }))
    .unwrap()
}

#[test]
fn every_example_of_a_consumed_topic_is_planned_or_ignored_never_rejected() {
    let channels = channels(&document());
    let mut planned = 0;
    for topic in ["payments", "bookkeeping", "bookings"] {
        for event_type in &channels[topic] {
            for (i, example) in examples(event_type).iter().enumerate() {
                let plan = plan(&delivered(event_type, example), "https://api.example")
                    .unwrap_or_else(|reason| panic!("{event_type} example {i} rejected: {reason}"));
                assert_eq!(
                    plan.is_some(),
                    NOTIFIED_TYPES.contains(&event_type.as_str()),
                    "{event_type} example {i}"
                );
                planned += usize::from(plan.is_some());
            }
        }
    }
    assert!(planned >= NOTIFIED_TYPES.len());
}

#[test]
fn every_notified_type_is_on_a_channel_it_subscribes_to() {
    let channels = channels(&document());
    for event_type in NOTIFIED_TYPES {
        assert!(
            ["payments", "bookkeeping", "bookings"]
                .iter()
                .any(|topic| channels[*topic].contains(event_type)),
            "{event_type}"
        );
    }
}

#[test]
fn an_unknown_type_is_ignored_not_rejected() {
    let plan = plan(
        &delivered("payments.payment.teleported", &json!({})),
        "http://x",
    );
    assert!(matches!(plan, Ok(None)));
}
