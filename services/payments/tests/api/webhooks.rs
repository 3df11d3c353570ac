//! The provider's signed webhooks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn deliver(app: &TestApp, body: &[u8], signature: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.app.url("/v1/webhooks/psp"))
        .header("content-type", "application/json")
        .header("psp-signature", signature)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_signatures_and_stale_timestamps_are_refused_and_change_nothing() {
    let app = TestApp::spawn_with_psp().await;
    app.psp().set_webhook_url(None).await.unwrap();
    let id = app.new_payment(1000, "manual").await;
    // A well-formed event that would authorize the payment.
    let body = serde_json::to_vec(&json!({
        "id": "evt_forged", "type": "authorization.authorized", "created": now(),
        "data": { "id": "auth_x", "status": "authorized", "amount": 1000, "currency": "EUR",
                  "captured_amount": 0, "refunded_amount": 0, "reference": format!("{id}.a1"),
                  "decline_code": null, "created_at": "2026-01-01T00:00:00Z" }
    }))
    .unwrap();
    let secret = app.psp().webhook_secret().as_bytes().to_vec();

    let wrong_key = platform_signature::sign(b"not-the-secret", now(), &body);
    let res = deliver(&app, &body, &wrong_key).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "invalid_signature"
    );

    let stale = platform_signature::sign(&secret, now() - 301, &body);
    let res = deliver(&app, &body, &stale).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "stale_signature"
    );

    assert_eq!(deliver(&app, &body, "garbage").await.status(), 400);
    let mut tampered = body.clone();
    tampered.push(b' ');
    let signed_original = platform_signature::sign(&secret, now(), &body);
    assert_eq!(
        deliver(&app, &tampered, &signed_original).await.status(),
        400
    );

    assert_eq!(app.payment(&id).await["status"], "requires_confirmation");
}

#[tokio::test]
async fn a_replayed_webhook_is_applied_once() {
    let app = TestApp::spawn_with_psp().await;
    let id = app.new_payment(1000, "manual").await;
    assert_eq!(
        app.confirm(&id, "4242424242424242", None).await.status(),
        200
    );
    let captured = app
        .post(&format!("/v1/payments/{id}/capture"), &json!({}), None)
        .await;
    assert_eq!(captured.status(), 200);
    let events = eventually(
        Duration::from_secs(20),
        "both webhooks delivered",
        || async {
            let hooks = app.psp().webhooks().await.ok()?;
            (hooks.len() >= 2 && hooks.iter().all(|h| h["delivered"] == true)).then_some(hooks)
        },
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(20), "the succeeded event", || async {
        (app.events("payments.payment.succeeded", &id).await >= 1).then_some(())
    })
    .await
    .unwrap();
    let updates_before = app.events("payments.payment.updated", &id).await;
    for hook in &events {
        app.psp()
            .resend_webhook(hook["id"].as_str().unwrap())
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(20), "the resent webhooks", || async {
        let hooks = app.psp().webhooks().await.ok()?;
        hooks
            .iter()
            .all(|h| h["attempts"].as_u64().unwrap_or(0) >= 2 && h["delivered"] == true)
            .then_some(())
    })
    .await
    .unwrap();
    // Give a wrongly applied replay the time to reach the stream.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(app.events("payments.payment.succeeded", &id).await, 1);
    assert_eq!(
        app.events("payments.payment.updated", &id).await,
        updates_before
    );
    assert_eq!(app.payment(&id).await["status"], "succeeded");
}

#[tokio::test]
async fn a_webhook_for_an_unknown_object_triggers_a_status_sync() {
    let app = TestApp::spawn_with_psp().await;
    // The provider authorized attempt 1 of this payment (say payments crashed
    // before saving the answer); its webhook is lost.
    app.psp().set_webhook_url(None).await.unwrap();
    let id = app.new_payment(1000, "manual").await;
    let created = authorize_at_the_provider(&app, &id).await;
    assert_eq!(created.status(), 201);
    let auth: Value = created.json().await.unwrap();
    app.psp()
        .set_webhook_url(Some(&app.app.url("/v1/webhooks/psp")))
        .await
        .unwrap();

    // A webhook naming only the provider's object id: payments asks the
    // provider and finds its payment.
    let requests_before = app.stat("requests").await;
    app.psp()
        .emit_webhook("authorization.updated", json!({ "id": auth["id"] }))
        .await
        .unwrap();
    let payment = app
        .wait_status(&id, "requires_capture", Duration::from_secs(20))
        .await;
    assert_eq!(payment["amount_authorized"], 1000);
    assert!(
        app.stat("requests").await > requests_before,
        "a status query was made"
    );

    // An object that is nobody's: acknowledged, nothing changes.
    app.psp()
        .emit_webhook("authorization.updated", json!({ "id": "auth_nobody" }))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(20),
        "the unknown webhook acknowledged",
        || async {
            let hooks = app.psp().webhooks().await.ok()?;
            hooks.last().filter(|h| h["delivered"] == true).map(|_| ())
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn concurrent_webhooks_for_the_same_change_publish_one_event() {
    let app = TestApp::spawn_with_psp().await;
    app.psp().set_webhook_url(None).await.unwrap();
    let id = app.new_payment(1000, "manual").await;
    let created = authorize_at_the_provider(&app, &id).await;
    let auth: Value = created.json().await.unwrap();
    let secret = app.psp().webhook_secret().as_bytes().to_vec();

    // Ten deliveries (distinct event ids) of the same snapshot at once: they
    // race on the payment's ETag; one saves, the others find nothing to do.
    let deliveries = (0..10).map(|i| {
        let body = serde_json::to_vec(&json!({
            "id": format!("evt_race_{i}"), "type": "authorization.authorized",
            "created": now(), "data": auth.clone(),
        }))
        .unwrap();
        let signature = platform_signature::sign(&secret, now(), &body);
        let app = &app;
        async move { deliver(app, &body, &signature).await.status().as_u16() }
    });
    let statuses = futures::future::join_all(deliveries).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.payment(&id).await["status"], "requires_capture");
    // A failed ETag check must not publish its event (the outbox commits the
    // state and the event in one database transaction).
    app.expect_event_once("payments.payment.updated", &id).await;
}

/// Authorizes attempt 1 of payment `id` (1000 EUR, manual capture) straight
/// at the provider, as if payments had crashed before saving the answer.
#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn authorize_at_the_provider(app: &TestApp, id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/authorizations", app.psp().url()))
        .header("Idempotency-Key", format!("{id}.a1"))
        .json(
            &json!({"amount": 1000, "currency": "EUR", "card_number": "4242424242424242",
                      "reference": format!("{id}.a1"), "capture": false}),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn eight_thousand_signature_entries_are_refused_before_the_body_is_hashed() {
    let app = TestApp::spawn_with_psp().await;
    let secret = app.psp().webhook_secret().as_bytes().to_vec();
    // 1 MB that is not an event: a verifier that got as far as the body
    // would answer `invalid_field`, not `invalid_signature`.
    let body = vec![b' '; 1 << 20];
    // 7,999 decoys, then the genuine signature: a verifier that hashes the
    // body per entry burns seconds of CPU and accepts the header.
    let genuine = platform_signature::sign(&secret, now(), &body);
    let (timestamp, tag) = genuine.split_once(',').unwrap();
    let header = format!("{timestamp}{},{tag}", ",v1=00".repeat(7_999));

    let started = std::time::Instant::now();
    let res = deliver(&app, &body, &header).await;
    let status = res.status();
    let problem: Value = res.json().await.unwrap();
    eprintln!(
        "8,000 entries, 1 MB body: {status} {} in {} ms",
        problem["code"],
        started.elapsed().as_millis()
    );
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "invalid_signature", "{problem}");
}
