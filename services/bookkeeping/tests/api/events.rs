//! The subscription path: a real sidecar delivers CloudEvents from Redis
//! Streams (in bulk) to bookkeeping, which books each event exactly once,
//! asks for redelivery on transient failures and dead-letters what it can
//! never book, with the reason.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::helpers::{
    DEAD_LETTER_TOPIC, REFUNDED, SUCCEEDED, TestApp, new_id, payment_created, payment_succeeded,
};

const CLEARING: &str = "asset:psp-clearing:eur";
const SALES: &str = "revenue:sales:eur";

#[tokio::test]
async fn an_event_delivered_twice_is_booked_once() {
    let app = TestApp::spawn().await;
    let event_id = new_id();

    // Two separate deliveries (Dapr folds copies that land in one bulk
    // request into one entry, so the second is published after the first).
    app.publish_payment_event(&event_id, SUCCEEDED, payment_succeeded("pay_1", 1250))
        .await;
    app.wait_deliveries("success", 1.0).await;
    app.publish_payment_event(&event_id, SUCCEEDED, payment_succeeded("pay_1", 1250))
        .await;

    // Both deliveries reach the app and are acknowledged...
    app.wait_deliveries("success", 2.0).await;
    // ...but the entry exists once.
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
    assert_eq!(app.entry_count().await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 1250);
    assert_eq!(app.balance_by_code(SALES).await, 1250);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_are_booked_once() {
    // Eight bulk requests in flight at once, each carrying the same event, as
    // sidecars would send them after a redelivery race. Sent straight to the
    // app so that they really overlap.
    let app = TestApp::spawn().await;
    let event = json!({
        "specversion": "1.0", "id": new_id(), "source": "payments", "type": SUCCEEDED,
        "datacontenttype": "application/json", "data": payment_succeeded("pay_c", 700),
    });
    let bodies: Vec<_> = (0..8)
        .map(|n| {
            json!({ "id": new_id(), "type": "com.dapr.event.sent.bulk", "topic": "payments", "pubsubname": "pubsub",
                "entries": [{ "entryId": format!("e{n}"), "event": event, "contentType": "application/cloudevents+json" }] })
        })
        .collect();
    let answers =
        futures::future::join_all(bodies.iter().map(|b| app.post_json("/events/payments", b)))
            .await;

    for (status, body) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(body["statuses"][0]["status"], "SUCCESS", "{body}");
    }
    assert_eq!(app.entry_count().await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 700);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn the_same_event_published_concurrently_through_the_sidecar_is_booked_once() {
    let app = TestApp::spawn().await;
    let event_id = new_id();
    let publishes = (0..8)
        .map(|_| app.publish_payment_event(&event_id, SUCCEEDED, payment_succeeded("pay_s", 300)));
    futures::future::join_all(publishes).await;

    app.wait_deliveries("success", 8.0).await;
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
    assert_eq!(app.entry_count().await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 300);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn payments_and_refunds_are_booked_by_the_chart_of_accounts() {
    let app = TestApp::spawn().await;
    for (i, amount) in [100, 200, 300, 400, 500].into_iter().enumerate() {
        app.publish_payment_event(
            &new_id(),
            SUCCEEDED,
            payment_succeeded(&format!("pay_{i}"), amount),
        )
        .await;
    }
    let refund = json!({ "refund_id": "ref_1", "payment_id": "pay_4", "amount": 250, "currency": "EUR",
        "customer_reference": "cus_42", "occurred_at": "2026-11-26T11:00:00Z" });
    app.publish_payment_event(&new_id(), REFUNDED, refund).await;

    app.wait_deliveries("success", 6.0).await;
    assert_eq!(app.entry_count().await, 6);
    assert_eq!(app.balance_by_code(SALES).await, 1500);
    assert_eq!(
        app.balance_by_code("revenue:refunds:eur").await,
        -250,
        "refunds are contra-revenue"
    );
    assert_eq!(app.balance_by_code(CLEARING).await, 1250);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn created_payments_are_recorded_without_an_entry_and_unknown_types_are_ignored() {
    let app = TestApp::spawn().await;
    let created = new_id();
    let unknown = new_id();
    app.publish_payment_event(
        &created,
        "payments.payment.created",
        payment_created("pay_n"),
    )
    .await;
    app.publish_payment_event(&unknown, "payments.payment.teleported", json!({}))
        .await;

    app.wait_deliveries("success", 2.0).await;
    assert_eq!(app.inbox_count("payments", &created).await, 1);
    assert_eq!(app.inbox_count("payments", &unknown).await, 0);
    assert_eq!(app.entry_count().await, 0);
}

#[tokio::test]
async fn a_handler_asking_retry_gets_the_event_again() {
    // A short lock timeout makes the handler give up quickly while the inbox
    // is locked, which it reports as RETRY.
    let app = TestApp::spawn_with(|s| s.events.lock_timeout_ms = 200).await;
    let event_id = new_id();

    let mut locker = app.db.connect().await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();

    app.publish_payment_event(&event_id, SUCCEEDED, payment_succeeded("pay_r", 900))
        .await;
    // The sidecar sees the app answer RETRY at least twice, well before its
    // own handler timeout (10 s) could have produced a retry.
    app.wait_deliveries_within("retry", 2.0, Duration::from_secs(5))
        .await;
    assert_eq!(app.deliveries("success").await, 0.0);

    // Once the database is free again, a redelivery succeeds.
    tx.rollback().await.unwrap();
    app.wait_deliveries("success", 1.0).await;
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 900);
    // Redelivered, not dead-lettered.
    assert_eq!(
        app.env
            .redis
            .stream_len(DEAD_LETTER_TOPIC)
            .await
            .unwrap_or(0),
        0
    );
}

#[tokio::test]
async fn an_event_that_can_never_be_booked_goes_to_the_dead_letter_topic_with_its_reason() {
    let app = TestApp::spawn().await;
    let poison = new_id();
    let good = new_id();

    app.publish_payment_event(&poison, SUCCEEDED, payment_succeeded("pay_x", -5))
        .await;
    app.publish_payment_event(&good, SUCCEEDED, payment_succeeded("pay_y", 10))
        .await;

    app.wait_dead_lettered(1).await;
    let letters = app.dead_letters().await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["type"], "bookkeeping.event.rejected");
    assert!(
        letter["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("positive"),
        "{letter}"
    );
    assert_eq!(letter["data"]["event"]["id"], poison.as_str());

    // The poison event changed nothing and did not block the good one.
    app.wait_deliveries("success", 2.0).await;
    assert_eq!(app.inbox_count("payments", &poison).await, 0);
    assert_eq!(app.inbox_count("payments", &good).await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 10);
    assert_eq!(
        app.deliveries("retry").await,
        0.0,
        "a rejected event must not be retried"
    );
}
