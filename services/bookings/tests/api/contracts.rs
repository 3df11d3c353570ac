//! The event contracts from both of bookings' sides: the examples of
//! payments' schemas drive the saga (and the ones about other payments are
//! ignored), and what bookings publishes, read back from its stream as a
//! subscriber receives it, matches the envelope and each type's schema.

use std::collections::BTreeSet;
use std::time::Duration;

use platform_event_contracts::asyncapi::{channels, document};
use platform_event_contracts::{assert_valid_envelope, examples};
use platform_test_support::eventually;
use serde_json::Value;

use crate::helpers::{TestApp, World};

#[tokio::test]
async fn the_examples_drive_the_saga_and_what_bookings_publishes_matches_its_contracts() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(2).await;
    let offering_id = offering["id"].as_str().unwrap();
    let res = app.book(offering_id, "contracts").await;
    assert_eq!(res.status(), 201);
    let booking: Value = res.json().await.unwrap();
    let id = booking["id"].as_str().unwrap().to_owned();
    let payment = app.payment_created(&id).await;

    // Every example of every payments type, about another payment: ignored.
    for event_type in &channels(&document())["payments"] {
        for example in examples(event_type) {
            app.publish_payment_event(event_type, example).await;
        }
    }
    // The succeeded example, about this booking's payment: confirmed.
    let mut succeeded = examples("payments.payment.succeeded").remove(0);
    succeeded["payment_id"] = payment.clone().into();
    succeeded["amount"] = booking["amount"].clone();
    app.publish_payment_event("payments.payment.succeeded", succeeded)
        .await;
    app.wait_for_state(&id, "confirmed", Duration::from_secs(15))
        .await;

    let expected: BTreeSet<&str> = [
        "bookings.offering.created",
        "bookings.booking.reserved",
        "bookings.booking.confirmed",
    ]
    .into();
    let events = eventually(Duration::from_secs(20), "bookings' events", || async {
        let reply = world
            .env
            .redis
            .command(&["XRANGE", "bookings", "-", "+"])
            .await
            .unwrap_or_default();
        let events: Vec<Value> = reply
            .lines()
            .filter(|l| l.starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("specversion").is_some())
            .collect();
        let types: BTreeSet<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
        expected.is_subset(&types).then_some(events.clone())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
    for event in &events {
        assert_valid_envelope(event);
        assert_eq!(event["source"], "bookings");
    }
}
