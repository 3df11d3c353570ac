//! Delivery receipts: the notification sandbox posts a signed receipt to
//! `/v1/providers/{provider}/receipts` after accepting an SMS or push, and
//! the SMTP catcher (playing a mail provider's webhook) after accepting an
//! email; either moves the notification from `sent` to `delivered` or
//! `bounced`.

use std::time::Duration;

use platform_test_support::{NotifySandbox, eventually, free_port};
use serde_json::{Value, json};

use crate::helpers::{Providers, TestApp, alert, new_id};

const PHONE: &str = "+4915112345678";
/// The sandbox's default `NOTIFY_CALLBACK_SECRET` = communication's default.
const SECRET: &[u8] = b"notify_local_sandbox";

/// The sandbox and communication, with receipts posted to `receipts_port`
/// (the app's own port unless given: receipts then reach the app).
async fn with_receipts(receipts_port: Option<u16>) -> (NotifySandbox, TestApp) {
    let port = free_port().unwrap();
    let base = format!("http://127.0.0.1:{}", receipts_port.unwrap_or(port));
    crate::helpers::with_notify(move |s| {
        s.server.port = port;
        s.providers.receipts_base_url = base;
    })
    .await
}

async fn create(app: &TestApp, body: &Value) -> String {
    app.create(body).await["id"].as_str().unwrap().to_owned()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Posts `receipt` to the app, signed with `secret` at `t` (no header if none).
async fn post_receipt(
    app: &TestApp,
    provider: &str,
    receipt: &Value,
    signed: Option<(&[u8], i64)>,
) -> (u16, Value) {
    let body = receipt.to_string();
    let mut request = reqwest::Client::new()
        .post(app.url(&format!("/v1/providers/{provider}/receipts")))
        .header("content-type", "application/json")
        .body(body.clone());
    if let Some((secret, t)) = signed {
        request = request.header(
            "Notify-Signature",
            platform_signature::sign(secret, t, body.as_bytes()),
        );
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn statuses(notification: &Value) -> Vec<String> {
    notification["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `id` is `status`, and checks that it got there straight
/// from `sent`.
async fn after_sent(app: &TestApp, id: &str, status: &str) -> Value {
    let notification = app.wait_status(id, status).await;
    assert_eq!(
        statuses(&notification),
        ["queued", "sending", "sent", status]
    );
    notification
}

fn status_reason(notification: &Value) -> &str {
    notification["status_reason"].as_str().unwrap()
}

/// Waits for the status event announcing `status` for `id`.
async fn status_event(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(
        Duration::from_secs(45),
        &format!("status_changed {status} for {id}"),
        || async {
            app.stream("communication").await.into_iter().find(|e| {
                e["type"] == "communication.notification.status_changed"
                    && e["data"]["notification_id"] == id
                    && e["data"]["status"] == status
            })
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_sms_is_delivered_after_its_receipt_and_the_status_event_says_so() {
    let (notify, app) = with_receipts(None).await;
    let id = create(&app, &alert("sms", ("phone", PHONE))).await;

    after_sent(&app, &id, "delivered").await;

    let event = status_event(&app, &id, "delivered").await;
    assert_eq!(event["data"]["previous_status"], "sent", "{event}");
    assert_eq!(event["data"]["channel"], "sms");
    let receipts = notify.receipts(&id).await.unwrap();
    assert_eq!(receipts.len(), 1, "{receipts:#?}");
    assert_eq!(receipts[0]["receipt"]["status"], "delivered");
    assert_eq!(
        receipts[0]["url"],
        app.url("/v1/providers/sms-primary/receipts")
    );
}

#[tokio::test]
async fn an_undeliverable_push_ends_bounced() {
    let (_notify, app) = with_receipts(None).await;
    let id = create(&app, &alert("push", ("push_token", "bounce-token"))).await;

    let bounced = after_sent(&app, &id, "bounced").await;

    assert!(
        status_reason(&bounced).contains("undeliverable"),
        "{bounced}"
    );
    let event = status_event(&app, &id, "bounced").await;
    assert_eq!(event["data"]["previous_status"], "sent", "{event}");
}

/// The SMTP catcher posting delivery events to the app's own port.
async fn email_with_receipts() -> (platform_test_support::SmtpCatcher, TestApp) {
    let (catcher, app) = crate::helpers::with_catcher(|_| {}).await;
    catcher
        .send_receipts_to(
            &app.url("/v1/providers/email/receipts"),
            std::str::from_utf8(SECRET).unwrap(),
        )
        .await
        .unwrap();
    (catcher, app)
}

#[tokio::test]
async fn an_email_is_delivered_after_the_providers_delivery_event() {
    let (catcher, app) = email_with_receipts().await;
    let id = create(&app, &alert("email", ("email", "ada@example.com"))).await;

    after_sent(&app, &id, "delivered").await;

    let event = status_event(&app, &id, "delivered").await;
    assert_eq!(event["data"]["channel"], "email", "{event}");
    let mails = catcher.messages("ada@example.com").await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["headers"]["X-Notification-Id"], id.as_str());
    assert_eq!(catcher.stats().await.unwrap()["receipts_delivered"], 1);
}

#[tokio::test]
async fn an_email_bounced_after_acceptance_ends_bounced() {
    let (catcher, app) = email_with_receipts().await;
    catcher.bounce(&["gone@example.com"]).await.unwrap();
    let id = create(&app, &alert("email", ("email", "gone@example.com"))).await;

    let bounced = after_sent(&app, &id, "bounced").await;

    assert!(
        status_reason(&bounced).contains("email: undeliverable"),
        "{bounced}"
    );
    // Accepted at SMTP time: the bounce came afterwards, as a delivery event.
    assert_eq!(catcher.messages("gone@example.com").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_replayed_receipt_changes_nothing_and_the_status_never_regresses() {
    let (notify, app) = with_receipts(None).await;
    let id = create(&app, &alert("sms", ("phone", PHONE))).await;
    app.wait_status(&id, "delivered").await;
    let receipt = notify.receipts(&id).await.unwrap()[0]["receipt"].clone();

    // The same receipt again (freshly signed, as a provider's retry).
    let (status, answer) = post_receipt(&app, "sms-primary", &receipt, Some((SECRET, now()))).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    // Another receipt that would move it backwards (delivered → bounced).
    let mut later = receipt.clone();
    later["id"] = json!(new_id("rcpt"));
    later["status"] = json!("undeliverable");
    let (status, answer) = post_receipt(&app, "sms-primary", &later, Some((SECRET, now()))).await;
    assert_eq!((status, answer["result"].as_str()), (200, Some("ignored")));
    assert_eq!(answer["status"], "delivered");

    let after = app.notification(&id).await;
    assert_eq!(after["status"], "delivered");
    assert_eq!(statuses(&after), ["queued", "sending", "sent", "delivered"]);

    // A receipt for a notification we do not know.
    let mut unknown = receipt.clone();
    unknown["id"] = json!(new_id("rcpt"));
    unknown["reference"] = json!(uuid::Uuid::new_v4().to_string());
    let (status, problem) =
        post_receipt(&app, "sms-primary", &unknown, Some((SECRET, now()))).await;
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn a_bad_signature_is_401_and_changes_nothing() {
    // Receipts go nowhere, so the notification stays `sent`.
    let (_notify, app) = with_receipts(Some(free_port().unwrap())).await;
    let id = create(&app, &alert("sms", ("phone", PHONE))).await;
    app.wait_status(&id, "sent").await;
    let receipt = json!({
        "id": new_id("rcpt"),
        "message_id": "msg_1",
        "reference": id,
        "status": "delivered",
        "occurred_at": "2026-11-26T10:00:00Z",
    });

    for signed in [
        Some((&b"wrong_secret"[..], now())),
        Some((SECRET, now() - 301)),
        None,
    ] {
        let (status, problem) = post_receipt(&app, "sms-primary", &receipt, signed).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("invalid_signature")),
            "{problem}"
        );
    }
    let after = app.notification(&id).await;
    assert_eq!(after["status"], "sent");
    assert_eq!(statuses(&after), ["queued", "sending", "sent"]);

    // The same receipt correctly signed is applied (and was not used up).
    let (status, answer) = post_receipt(&app, "sms-primary", &receipt, Some((SECRET, now()))).await;
    assert_eq!((status, answer["result"].as_str()), (200, Some("applied")));
    app.wait_status(&id, "delivered").await;
}

#[tokio::test]
async fn eight_thousand_signature_entries_are_refused_before_the_body_is_hashed() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    // 1 MB that is not a receipt: a verifier that got as far as the body
    // would answer 422 `validation_failed`, not 401 `invalid_signature`.
    let body = vec![b' '; 1 << 20];
    // 7,999 decoys, then the genuine signature: a verifier that hashes the
    // body per entry burns seconds of CPU and accepts the header.
    let genuine = platform_signature::sign(SECRET, now(), &body);
    let (timestamp, tag) = genuine.split_once(',').unwrap();
    let header = format!("{timestamp}{},{tag}", ",v1=00".repeat(7_999));

    let started = std::time::Instant::now();
    let response = reqwest::Client::new()
        .post(app.url("/v1/providers/sms-primary/receipts"))
        .header("content-type", "application/json")
        .header("Notify-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let problem: Value = response.json().await.unwrap();
    eprintln!(
        "8,000 entries, 1 MB body: {status} {} in {} ms",
        problem["code"],
        started.elapsed().as_millis()
    );
    // The route's status for any refused signature (a_bad_signature_is_401).
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_signature")),
        "{problem}"
    );
}
