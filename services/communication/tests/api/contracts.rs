//! What communication publishes, read back from the pub/sub streams as a
//! subscriber receives it (the real daprd wrote the entries), matches the
//! contracts: its status events on `communication`, its send jobs on
//! `communication.sends`, and its rejections on `payments.deadletter`
//! (contracts/events/envelope.schema.json and each type's schema).

use serde_json::json;

use crate::helpers::{new_id, payment_succeeded, with_notify};

#[tokio::test]
async fn every_event_communication_publishes_matches_its_contract() {
    let (_notify, app) = with_notify(|_| {}).await;
    app.put_recipient("cust-c", json!({"phone": "+4917012345679", "locale": "de"}))
        .await;
    app.publish_payment_succeeded(&new_id("evt"), "pay_c1", "cust-c", 1999)
        .await;
    let notifications = app.wait_notifications(1).await;
    app.wait_status(&notifications[0].0, "sent").await;
    let mut rejected = payment_succeeded("pay_c2", "cust-c", 500);
    rejected.as_object_mut().unwrap().remove("currency");
    app.publish_event(
        "payments",
        &new_id("evt"),
        "payments.payment.succeeded",
        rejected,
    )
    .await;

    // queued, sending, sent: one event each.
    let statuses = app.wait_stream("communication", 3).await;
    let jobs = app.wait_stream("communication.sends", 1).await;
    let letters = app.wait_stream("payments.deadletter", 1).await;
    for event in statuses.iter().chain(&jobs).chain(&letters) {
        platform_event_contracts::assert_valid_envelope(event);
        assert_eq!(event["source"], "communication");
    }
    assert!(
        statuses
            .iter()
            .all(|e| e["type"] == "communication.notification.status_changed")
    );
    assert_eq!(jobs[0]["type"], "communication.send.requested");
    assert_eq!(letters[0]["type"], "communication.event.rejected");
}
