//! The plumbing end to end: payments commits a payment and its event (an
//! outbox record) in one state transaction and its relay publishes it
//! (ADR 0031); bookkeeping's sidecar
//! delivers the CloudEvent to its declarative subscription; bookkeeping
//! records it once in its inbox.

use std::time::Duration;

use platform_test_support::{
    TestDatabase, TestEnv, TestIssuer, eventually, json_answer, start_with_sidecar_unready,
};
use platform_tests::{source, start_payments};
use serde_json::json;
use sqlx::Row;

#[tokio::test]
async fn a_payment_event_reaches_bookkeeping_once_through_the_outbox() {
    let env = TestEnv::start().await.unwrap();

    // bookkeeping with its own database and sidecar.
    let mut bk = source("bookkeeping")
        .load::<bookkeeping::settings::Settings>()
        .unwrap();
    let db = TestDatabase::create_in_place(&mut bk.database)
        .await
        .unwrap();
    bk.server.port = 0;
    let (bk_app, bk_daprd) = start_with_sidecar_unready(&env, "bookkeeping", |dapr| {
        dapr.apply_to(&mut bk.dapr);
        async move { Ok(bookkeeping::startup::build(bk).await?) }
    })
    .await
    .unwrap();

    // payments and its sidecar, on the same Redis and name-resolution file;
    // its state store is a PostgreSQL database of its own.
    let issuer = TestIssuer::start().await.unwrap();
    let payments = start_payments(&env, &issuer, |_, _| {}).await.unwrap();
    let (pay_app, pay_daprd) = (&payments.app, &payments.daprd);
    bk_app.wait_ready(Duration::from_secs(20)).await.unwrap();
    pay_app.wait_ready(Duration::from_secs(20)).await.unwrap();

    let created = json_answer(
        reqwest::Client::new()
            .post(pay_app.url("/v1/payments"))
            .bearer_auth(issuer.token("payments", &["payments:write"]))
            .json(&json!({ "amount": 990, "currency": "JPY", "customer_reference": "cus_e2e" })),
    )
    .await
    .unwrap();
    let payment_id = created["id"].as_str().unwrap().to_owned();

    let pool = db.pool().await.unwrap();
    let row = eventually(
        Duration::from_secs(30),
        "bookkeeping to record the payment event",
        || {
            let pool = pool.clone();
            let payment_id = payment_id.clone();
            async move {
                sqlx::query(
                    "SELECT source, event_id, event_type, topic FROM inbox WHERE subject = $1",
                )
                .bind(payment_id)
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
            }
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\npayments sidecar:\n{}\nbookkeeping sidecar:\n{}",
            pay_daprd.log_tail(20),
            bk_daprd.log_tail(20)
        )
    });

    assert_eq!(row.get::<String, _>("source"), "payments");
    assert_eq!(
        row.get::<String, _>("event_type"),
        "payments.payment.created"
    );
    assert_eq!(row.get::<String, _>("topic"), "payments");
    // The CloudEvent id is the one payments' outbox record carries (ADR
    // 0031), the same on every republish.
    let event_id: String = row.get("event_id");
    assert!(
        event_id.len() == 36 && event_id.matches('-').count() == 4,
        "the CloudEvent id is the outbox record's event id: {event_id}"
    );

    // Exactly one event for one state change, even after the outbox's own
    // redelivery window has passed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n: i64 = sqlx::query("SELECT count(*) AS n FROM inbox")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
    assert_eq!(n, 1);
    pool.close().await;
}
