//! Booking events (`bookings.booking.*`, published by a real `bookings`
//! sidecar on the `bookings` topic) → messages in the participant's
//! language: confirmed, expired (released), cancellation confirmed
//! (cancelled or refunded, once per booking). docs/adr/0044.

use serde_json::{Value, json};

use crate::helpers::{TestApp, new_id, with_notify};

const PHONE: &str = "+4917099988877";

/// A `bookings.booking.<state>` event's data (contracts/events).
fn booking_event(
    booking_id: &str,
    participant: &str,
    locale: &str,
    state: &str,
    cause: &str,
) -> Value {
    json!({
        "booking_id": booking_id,
        "offering_id": "0193a000-0000-7000-8000-000000000001",
        "participant": participant,
        "locale": locale,
        "amount": 12000,
        "currency": "EUR",
        "state": state,
        "cause": cause,
        "payment_id": "pay_b1",
        "refund_amount": null,
        "occurred_at": "2026-12-07T08:00:00Z",
    })
}

async fn publish(app: &TestApp, id: &str, state: &str, data: Value) {
    app.publish_event("bookings", id, &format!("bookings.booking.{state}"), data)
        .await;
}

/// The bodies of the SMS sent to [`PHONE`], waiting for `n`.
#[expect(clippy::expect_used, reason = "a test helper")]
async fn wait_sms(notify: &platform_test_support::NotifySandbox, n: usize) -> Vec<String> {
    platform_test_support::eventually(
        std::time::Duration::from_secs(30),
        "text messages",
        || async {
            let sent = notify.messages("sms-primary", PHONE).await.ok()?;
            (sent.len() >= n).then(|| {
                sent.iter()
                    .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            })
        },
    )
    .await
    .expect("text messages")
}

#[tokio::test]
async fn a_confirmed_booking_is_confirmed_once_in_the_language_of_the_booking() {
    let (notify, app) = with_notify(|_| {}).await;
    // The directory says English; the booking was made in German.
    app.put_recipient("member-1", json!({"phone": PHONE, "locale": "en"}))
        .await;
    let event_id = new_id("evt");
    for _ in 0..3 {
        publish(
            &app,
            &event_id,
            "confirmed",
            booking_event("b-1", "member-1", "de", "confirmed", "payment_succeeded"),
        )
        .await;
    }
    let all = app.wait_notifications(1).await;
    let body = app.wait_status(&all[0].0, "sent").await;
    assert_eq!(body["template"], "booking_confirmed");
    assert_eq!(body["locale"], "de");

    let sent = wait_sms(&notify, 1).await;
    assert!(
        sent[0].contains("bestätigt") && sent[0].contains("120,00 EUR"),
        "German confirmation with the German amount: {sent:?}"
    );
    app.wait_delivered("bookings", 3.0).await;
    assert_eq!(app.notifications().await.len(), 1);
    assert_eq!(
        notify.messages("sms-primary", PHONE).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_released_booking_tells_the_participant_it_expired() {
    let (notify, app) = with_notify(|_| {}).await;
    app.put_recipient("member-2", json!({"phone": PHONE})).await;
    publish(
        &app,
        &new_id("evt"),
        "released",
        booking_event("b-2", "member-2", "en", "released", "hold_expired"),
    )
    .await;
    let all = app.wait_notifications(1).await;
    let body = app.wait_status(&all[0].0, "sent").await;
    assert_eq!(body["template"], "booking_expired");
    assert_eq!(body["category"], "bookings");
    let sent = wait_sms(&notify, 1).await;
    assert!(sent[0].contains("expired"), "{sent:?}");
}

#[tokio::test]
async fn cancelled_then_refunded_confirms_the_cancellation_once_with_the_refund() {
    let (notify, app) = with_notify(|_| {}).await;
    app.put_recipient("member-3", json!({"phone": PHONE})).await;
    let mut cancelled = booking_event("b-3", "member-3", "en", "cancelled", "member_cancelled");
    cancelled["refund_amount"] = json!(6000);
    let mut refunded = cancelled.clone();
    refunded["state"] = json!("refunded");
    refunded["cause"] = json!("refund_succeeded");
    publish(&app, &new_id("evt"), "cancelled", cancelled).await;
    let all = app.wait_notifications(1).await;
    app.wait_status(&all[0].0, "sent").await;
    publish(&app, &new_id("evt"), "refunded", refunded).await;
    // Both events handled: the second found the booking's message there.
    app.wait_delivered("bookings", 2.0).await;

    let all = app.notifications().await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        app.notification(&all[0].0).await["template"],
        "booking_cancelled"
    );
    let sent = wait_sms(&notify, 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("cancellation") && sent[0].contains("60.00 EUR"),
        "{sent:?}"
    );
}

#[tokio::test]
async fn a_booking_event_without_its_participant_goes_to_the_dead_letter_topic() {
    let (_notify, app) = with_notify(|_| {}).await;
    let mut data = booking_event("b-4", "member-4", "en", "confirmed", "payment_succeeded");
    data.as_object_mut().unwrap().remove("participant");
    publish(&app, &new_id("evt"), "confirmed", data).await;

    let letters = app.wait_stream("bookings.deadletter", 1).await;
    assert_eq!(letters[0]["type"], "communication.event.rejected");
    assert!(
        letters[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("participant"),
        "{}",
        letters[0]
    );
    assert!(app.notifications().await.is_empty());
}
