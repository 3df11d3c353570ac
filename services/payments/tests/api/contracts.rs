//! What payments publishes, read back from the pub/sub stream as a
//! subscriber receives it (the real daprd built the stream entry), matches
//! the contracts: the envelope (contracts/events/envelope.schema.json) and
//! the data of its type (contracts/events/<type>.schema.json).

use std::collections::BTreeSet;
use std::time::Duration;

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const GOOD: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";

/// The CloudEvents on the `payments` stream (the JSON values of its entries).
async fn published(app: &TestApp) -> Vec<Value> {
    let reply = app
        .env
        .redis
        .command(&["XRANGE", "payments", "-", "+"])
        .await
        .unwrap_or_default();
    reply
        .lines()
        .filter(|line| line.starts_with('{'))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        // Each stream entry also holds the publish metadata as JSON.
        .filter(|v| v.get("specversion").is_some())
        .collect()
}

#[tokio::test]
async fn every_event_payments_publishes_matches_the_envelope_and_its_data_schema() {
    let app = TestApp::spawn_with_psp().await;
    // Succeeded, updated (requires_capture) and a refund.
    let captured = app.new_payment(1000, "manual").await;
    assert_eq!(app.confirm(&captured, GOOD, None).await.status(), 200);
    let capture = app
        .post(
            &format!("/v1/payments/{captured}/capture"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(capture.status(), 200);
    let refund = app
        .post(
            &format!("/v1/payments/{captured}/refunds"),
            &json!({"amount": 400}),
            None,
        )
        .await;
    assert_eq!(refund.status(), 201);
    // Failed.
    let declined = app.new_payment(700, "automatic").await;
    let _ = app.confirm(&declined, DECLINED, None).await;
    // Canceled before confirmation.
    let canceled = app.new_payment(300, "automatic").await;
    let cancel = app
        .post(&format!("/v1/payments/{canceled}/cancel"), &json!({}), None)
        .await;
    assert_eq!(cancel.status(), 200);

    let expected: BTreeSet<&str> = [
        "payments.payment.created",
        "payments.payment.updated",
        "payments.payment.succeeded",
        "payments.refund.succeeded",
        "payments.payment.failed",
        "payments.payment.canceled",
    ]
    .into();
    let events = eventually(
        Duration::from_secs(20),
        "every type on the stream",
        || async {
            let events = published(&app).await;
            let types: BTreeSet<String> = events
                .iter()
                .filter_map(|e| e["type"].as_str().map(str::to_owned))
                .collect();
            expected
                .iter()
                .all(|t| types.contains(*t))
                .then_some(events)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(40)));

    for event in &events {
        platform_event_contracts::assert_valid_envelope(event);
        assert_eq!(event["source"], "payments");
        assert_eq!(event["topic"], "payments");
    }
    // One id per event: consumers deduplicate on (source, id).
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "ids are unique");
}
