//! The crash matrix (issue #15): bookings and its sidecar die without a
//! graceful stop after each step of the saga, payments' events arrive while
//! they are down (and again, as a redelivery), and a new instance on the
//! same database, Redis and scheduler resumes where the saga was: each
//! fact applied once, each compensation decided once (and its call still
//! pending until payments answers).

use std::time::Duration;

use platform_test_support::Daprd;
use serde_json::{Value, json};

use crate::helpers::{TestApp, World, payment_data};

/// A payments event as payments' outbox publishes it, with a fixed id so
/// that publishing it again is a redelivery.
fn payment_event(id: &str, event_type: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "payments", "type": event_type,
        "subject": data["payment_id"], "datacontenttype": "application/json", "data": data,
    })
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
fn causes(booking: &Value) -> Vec<String> {
    booking["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["to"].as_str().unwrap(),
                t["cause"].as_str().unwrap()
            )
        })
        .collect()
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn commands(app: &TestApp, id: &str) -> Vec<(String, Option<i64>)> {
    let id = uuid::Uuid::parse_str(id).unwrap();
    sqlx::query_as(
        "SELECT command, amount FROM saga_commands WHERE booking_id = $1 ORDER BY command",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_crash_after_every_step_resumes_the_saga_and_decides_each_compensation_once() {
    let world = World::start().await;
    // payments' publisher: events reach the topic while bookings is down.
    let payments = Daprd::publisher(&world.env, "payments").await.unwrap();
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(2).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let res = app.book(&offering_id, "crash-matrix").await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payment = app.payment_created(&id).await;

    // Step 1 done (reserved). Crash; the payment succeeds meanwhile, and
    // its event is delivered twice.
    drop(app);
    let succeeded = payment_event(
        "evt-succeeded",
        "payments.payment.succeeded",
        payment_data(&payment, 12000),
    );
    for _ in 0..2 {
        payments
            .publish_cloudevent("pubsub", "payments", &succeeded)
            .await
            .unwrap();
    }
    let app = TestApp::spawn(&world, 900).await;
    app.wait_for_state(&id, "confirmed", Duration::from_secs(30))
        .await;

    // Step 2 done (confirmed). Crash and come back: nothing moves.
    drop(app);
    let app = TestApp::spawn(&world, 900).await;
    assert_eq!(app.booking(&id).await["state"], "confirmed");
    assert_eq!(app.taken(&offering_id).await, 1);

    // Step 3: the member cancels (50 % back). Crash right after, before
    // payments could refund; the old success is redelivered meanwhile.
    let res = app
        .http
        .post(app.app.url(&format!("/v1/bookings/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(app);
    payments
        .publish_cloudevent("pubsub", "payments", &succeeded)
        .await
        .unwrap();
    let app = TestApp::spawn(&world, 900).await;
    // The refund is still to be made (payments is not here), decided once.
    let cancelled = app.booking(&id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(app.taken(&offering_id).await, 0, "the place went back once");

    // Step 4: the refund succeeds while bookings is down (twice).
    drop(app);
    let refunded = payment_event(
        "evt-refunded",
        "payments.refund.succeeded",
        json!({
            "refund_id": format!("{payment}.r1"), "payment_id": payment, "amount": 6000,
            "currency": "EUR", "customer_reference": "member-1",
            "occurred_at": "2026-12-07T10:00:00Z",
        }),
    );
    for _ in 0..2 {
        payments
            .publish_cloudevent("pubsub", "payments", &refunded)
            .await
            .unwrap();
    }
    let app = TestApp::spawn(&world, 900).await;
    let done = app
        .wait_for_state(&id, "refunded", Duration::from_secs(30))
        .await;
    assert_eq!(
        causes(&done),
        [
            "reserved:reserved",
            "confirmed:payment_succeeded",
            "cancelled:member_cancelled",
            "refunded:refund_succeeded"
        ],
        "every fact applied once across four crashes"
    );
    let decided = commands(&app, &id).await;
    assert_eq!(
        decided
            .iter()
            .filter(|(c, _)| c == "refund")
            .map(|(_, a)| *a)
            .collect::<Vec<_>>(),
        [Some(6000)],
        "one refund, of the policy's amount: {decided:?}"
    );
    assert_eq!(app.taken(&offering_id).await, 0);
}

#[tokio::test]
async fn a_late_success_delivered_across_a_crash_is_refunded_once() {
    let world = World::start().await;
    let payments = Daprd::publisher(&world.env, "payments").await.unwrap();
    let app = TestApp::spawn(&world, 3).await;
    let offering = app.create_offering(1).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let res = app.book(&offering_id, "late").await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payment = app.payment_created(&id).await;
    app.wait_for_state(&id, "released", Duration::from_secs(30))
        .await;

    // Released (hold expired). Crash; the payment still succeeds, twice.
    drop(app);
    let late = payment_event(
        "evt-late",
        "payments.payment.succeeded",
        payment_data(&payment, 12000),
    );
    for _ in 0..2 {
        payments
            .publish_cloudevent("pubsub", "payments", &late)
            .await
            .unwrap();
    }
    let app = TestApp::spawn(&world, 3).await;
    let cancelled = app
        .wait_for_state(&id, "cancelled", Duration::from_secs(30))
        .await;
    assert_eq!(
        causes(&cancelled),
        [
            "reserved:reserved",
            "released:hold_expired",
            "cancelled:late_payment_refunded"
        ]
    );
    assert_eq!(cancelled["refund_amount"], 12000);
    let decided = commands(&app, &id).await;
    assert!(
        decided.contains(&("refund".to_owned(), Some(12000))),
        "{decided:?}"
    );
    assert_eq!(
        decided.iter().filter(|(c, _)| c == "refund").count(),
        1,
        "{decided:?}"
    );
    // The place stays free: a late payment never takes it back.
    assert_eq!(app.taken(&offering_id).await, 0);
}
