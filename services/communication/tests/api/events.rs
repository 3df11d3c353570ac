//! Domain events → notifications: recipient resolution through the
//! directory, exactly once per event, preferences, rejection with a reason.

use serde_json::{Value, json};

use crate::helpers::{new_id, payment_succeeded, with_notify};

const PHONE: &str = "+4917012345678";

#[tokio::test]
async fn a_redelivered_payment_event_sends_one_sms_to_the_directory_contact() {
    let (notify, app) = with_notify(|_| {}).await;
    app.put_recipient("cust-1", json!({"phone": PHONE, "locale": "de"}))
        .await;
    let event_id = new_id("evt");
    for _ in 0..3 {
        app.publish_payment_succeeded(&event_id, "pay_1", "cust-1", 1999)
            .await;
    }
    let all = app.wait_notifications(1).await;
    app.wait_status(&all[0].0, "sent").await;

    let sent = notify.messages("sms-primary", PHONE).await.unwrap();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0]["body"].as_str().unwrap().contains("19,99 EUR"),
        "German amount: {}",
        sent[0]["body"]
    );
    // Every delivery was handled (the later ones as duplicates) before this.
    app.wait_delivered("payments", 3.0).await;
    assert_eq!(app.notifications().await.len(), 1);
}

#[tokio::test]
async fn an_event_that_can_never_notify_goes_to_the_dead_letter_topic_with_its_reason() {
    let (_notify, app) = with_notify(|_| {}).await;
    let mut data = payment_succeeded("pay_2", "cust-2", 500);
    data.as_object_mut().unwrap().remove("currency");
    app.publish_event(
        "payments",
        &new_id("evt"),
        "payments.payment.succeeded",
        data,
    )
    .await;

    let letters = app.wait_stream("payments.deadletter", 1).await;
    assert_eq!(letters[0]["type"], "communication.event.rejected");
    assert!(
        letters[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("currency"),
        "{}",
        letters[0]
    );
    assert!(app.notifications().await.is_empty());
}

#[tokio::test]
async fn a_recipient_without_contacts_is_recorded_as_not_sent() {
    let (_notify, app) = with_notify(|_| {}).await;
    app.publish_payment_succeeded(&new_id("evt"), "pay_3", "nobody", 500)
        .await;
    let all = app.wait_notifications(1).await;
    let body = app.wait_status(&all[0].0, "not_sent").await;
    assert_eq!(body["status_reason"], "no_address");
}

#[tokio::test]
async fn opt_outs_apply_to_events_but_receipts_are_critical() {
    let (notify, app) = with_notify(|_| {}).await;
    app.put_recipient("cust-4", json!({"phone": PHONE})).await;
    app.opt_out("cust-4", "sms", &["payments", "payment_receipt"])
        .await;
    let failed = json!({
        "payment_id": "pay_4", "amount": 700, "currency": "EUR",
        "customer_reference": "cust-4", "reason": "card declined",
        "occurred_at": "2026-11-26T10:00:00Z",
    });
    app.publish_event(
        "payments",
        &new_id("evt"),
        "payments.payment.failed",
        failed,
    )
    .await;
    app.publish_payment_succeeded(&new_id("evt"), "pay_4", "cust-4", 700)
        .await;
    let all = app.wait_notifications(2).await;
    let mut statuses = Vec::new();
    for (id, _, _) in &all {
        let body = app.notification(id).await;
        let status = if body["template"] == "payment_receipt" {
            app.wait_status(id, "sent").await["status"].clone()
        } else {
            body["status"].clone()
        };
        statuses.push((
            body["template"].clone(),
            status,
            body["status_reason"].clone(),
        ));
    }
    statuses.sort_by_key(|s| s.0.to_string());
    assert_eq!(
        statuses,
        [
            (
                json!("payment_failed"),
                json!("not_sent"),
                json!("opted_out")
            ),
            (json!("payment_receipt"), json!("sent"), Value::Null),
        ]
    );
    assert_eq!(
        notify.messages("sms-primary", PHONE).await.unwrap().len(),
        1
    );
}
