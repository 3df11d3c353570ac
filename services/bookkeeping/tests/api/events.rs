//! The subscription path: a real sidecar delivers CloudEvents from Redis
//! Streams to bookkeeping, which answers SUCCESS, RETRY or DROP.

use std::time::Duration;

use sqlx::Connection;

use crate::helpers::{DEAD_LETTER_TOPIC, TestApp, new_id, payment_created};

#[tokio::test]
async fn an_event_delivered_twice_is_applied_once() {
    let app = TestApp::spawn().await;
    let event_id = new_id();

    app.publish_payment_created(&event_id, payment_created("pay_1"))
        .await;
    app.publish_payment_created(&event_id, payment_created("pay_1"))
        .await;

    // Both deliveries reach the app and are acknowledged...
    app.wait_deliveries("success", 2.0).await;
    // ...but the effect happens once.
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_are_applied_once() {
    let app = TestApp::spawn().await;
    let event_id = new_id();

    let publishes =
        (0..8).map(|_| app.publish_payment_created(&event_id, payment_created("pay_c")));
    futures_join(publishes).await;

    app.wait_deliveries("success", 8.0).await;
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
}

#[tokio::test]
async fn distinct_events_are_each_applied() {
    let app = TestApp::spawn().await;
    let ids: Vec<String> = (0..5).map(|_| new_id()).collect();
    for id in &ids {
        app.publish_payment_created(id, payment_created("pay_d"))
            .await;
    }
    app.wait_deliveries("success", 5.0).await;
    for id in &ids {
        assert_eq!(app.inbox_count("payments", id).await, 1, "event {id}");
    }
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

    app.publish_payment_created(&event_id, payment_created("pay_r"))
        .await;
    // The sidecar sees the app answer RETRY at least twice, well before its
    // own handler timeout (10 s) could have produced a retry...
    app.wait_deliveries_within("retry", 2.0, Duration::from_secs(5))
        .await;
    // daprd 1.18 logs an explicit RETRY answer as a retriable error with no
    // cause (a timeout or a 5xx would carry one).
    assert!(
        app.daprd.log_tail(200).contains(
            "retriable error while publishing a subscribed message to topic payments, err: <nil>"
        ),
        "the sidecar did not log an explicit RETRY answer:\n{}",
        app.daprd.log_tail(30)
    );
    assert_eq!(app.deliveries("success").await, 0.0);

    // ...and once the database is free again, a redelivery succeeds.
    tx.rollback().await.unwrap();
    app.wait_deliveries("success", 1.0).await;
    assert_eq!(app.inbox_count("payments", &event_id).await, 1);
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
async fn an_invalid_event_is_dropped_to_the_dead_letter_topic_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let event_id = new_id();

    let mut bad = payment_created("pay_x");
    bad["amount"] = serde_json::json!(-5);
    app.publish_payment_created(&event_id, bad).await;

    app.wait_dead_lettered(1).await;
    assert_eq!(app.inbox_count("payments", &event_id).await, 0);
    assert_eq!(
        app.deliveries("retry").await,
        0.0,
        "a DROP must not be retried"
    );
}

#[tokio::test]
async fn a_payload_that_is_not_a_cloudevent_is_dropped() {
    let app = TestApp::spawn().await;
    app.daprd
        .publish_raw(
            "pubsub",
            "payments",
            "application/octet-stream",
            b"\x00not json".to_vec(),
        )
        .await
        .unwrap();

    app.wait_dead_lettered(1).await;
}

async fn futures_join<F: Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let handles: Vec<_> = futures.collect();
    futures::future::join_all(handles).await;
}
