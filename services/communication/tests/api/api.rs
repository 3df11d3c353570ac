//! The API without sending: idempotency, validation, rendering before
//! queueing, preferences, throttling, scopes, the status machine.

use serde_json::{Value, json};

use crate::helpers::{Providers, TestApp, new_id};

fn promotion(recipient: &str) -> Value {
    json!({
        "recipient": {"id": recipient, "email": format!("{recipient}@example.com")},
        "template": "promotion",
        "category": "marketing",
        "data": {"headline": "Winter sale", "offer": "30% off skis"},
        "channels": ["email"],
    })
}

#[tokio::test]
async fn the_same_idempotency_key_gives_the_same_notification_and_another_body_a_conflict() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let key = new_id("key");

    let first = app.notify(&key, &promotion("r1")).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().contains_key("location"));
    let first: Value = first.json().await.unwrap();
    let again: Value = app
        .notify(&key, &promotion("r1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], again["id"]);

    let other = app.notify(&key, &promotion("r2")).await;
    assert_eq!(other.status(), 409);
    let problem: Value = other.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_conflict");

    let missing = app
        .http
        .post(app.url("/v1/notifications"))
        .json(&promotion("r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 422);
    assert_eq!(app.notifications().await.len(), 1);
}

#[tokio::test]
async fn a_template_that_fails_to_render_is_refused_and_nothing_is_queued() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let mut body = promotion("r1");
    body["data"] = json!({"headline": "Winter sale"});

    let res = app.notify(&new_id("key"), &body).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "template_render_failed", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("offer"),
        "{problem}"
    );

    body["template"] = json!("no_such_template");
    let res = app.notify(&new_id("key"), &body).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "unknown_template"
    );

    let mut no_address = promotion("r1");
    no_address["recipient"] = json!({"id": "r1"});
    let res = app.notify(&new_id("key"), &no_address).await;
    assert_eq!(res.status(), 422);

    assert!(app.notifications().await.is_empty());
    assert!(app.stream("communication.sends").await.is_empty());
}

#[tokio::test]
async fn bad_input_is_a_clear_422() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    for (field, value) in [
        ("/recipient/email", json!("not-an-address")),
        ("/recipient/phone", json!("0151 123")),
        ("/recipient/locale", json!("GERMAN")),
        ("/category", json!("Marketing!")),
        ("/data", json!([1, 2])),
        ("/channels", json!(["fax"])),
    ] {
        let mut body = promotion("r1");
        let (parent, key) = field.rsplit_once('/').unwrap();
        body.pointer_mut(parent).unwrap()[key] = value;
        let res = app.notify(&new_id("key"), &body).await;
        assert_eq!(res.status(), 422, "{field}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "validation_failed", "{field}: {problem}");
    }
    assert!(app.notifications().await.is_empty());
}

#[tokio::test]
async fn an_opted_out_recipient_gets_not_sent_but_critical_categories_bypass_the_opt_out() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    app.opt_out("r1", "email", &["marketing", "security"]).await;
    let prefs: Value = app
        .get("/v1/recipients/r1/preferences")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(prefs["preferences"].as_array().unwrap().len(), 2);
    assert!(
        prefs["critical_categories"]
            .as_array()
            .unwrap()
            .contains(&json!("security"))
    );

    let suppressed = app.create(&promotion("r1")).await;
    assert_eq!(suppressed["status"], "not_sent");
    assert_eq!(suppressed["status_reason"], "opted_out");

    let alert = json!({
        "recipient": {"id": "r1", "email": "r1@example.com"},
        "template": "security_alert",
        "category": "security",
        "data": {"event": "new sign-in"},
        "channels": ["email"],
    });
    let critical = app.create(&alert).await;
    assert_eq!(critical["status"], "queued", "{critical}");

    // Opted out by SMS only: email still goes.
    let other = app.create(&promotion("r2")).await;
    assert_eq!(other["status"], "queued");

    let history = app.notification(suppressed["id"].as_str().unwrap()).await;
    assert_eq!(history["history"][0]["status"], "not_sent");
}

#[tokio::test]
async fn over_the_per_recipient_limit_the_api_answers_429_with_retry_after() {
    let app = TestApp::spawn_with(&Providers::unreachable(), |s| {
        s.throttle.max_per_window = 2;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            app.notify(&new_id("key"), &promotion("r1")).await.status(),
            202
        );
    }
    let res = app.notify(&new_id("key"), &promotion("r1")).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "throttled");
    // Another recipient has its own window; critical messages are not counted.
    assert_eq!(
        app.notify(&new_id("key"), &promotion("r2")).await.status(),
        202
    );
    assert_eq!(app.notifications().await.len(), 3);
}

#[tokio::test]
async fn the_api_needs_its_scopes() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let anonymous = reqwest::Client::new()
        .get(app.url("/v1/recipients/r1/preferences"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let read_only = crate::helpers::authorized_client(
        &app.issuer.token("communication", &["communication:read"]),
    )
    .unwrap();
    let res = read_only
        .post(app.url("/v1/notifications"))
        .header("Idempotency-Key", "k")
        .json(&promotion("r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn the_status_machine_only_moves_forward() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let n = app.create(&promotion("r1")).await;
    let mut conn = app.db.connect().await.unwrap();
    let id = n["id"].as_str().unwrap();
    let forward = sqlx::query(
        "UPDATE notifications SET status = 'failed', in_flight = false WHERE id = $1::uuid",
    )
    .bind(id)
    .execute(&mut conn)
    .await;
    assert!(forward.is_ok(), "{forward:?}");
    for back in ["queued", "sending", "sent"] {
        let res = sqlx::query("UPDATE notifications SET status = $2 WHERE id = $1::uuid")
            .bind(id)
            .bind(back)
            .execute(&mut conn)
            .await;
        assert!(res.is_err(), "failed -> {back} must be refused");
    }
    let body = app.notification(id).await;
    assert_eq!(body["status"], "failed");
    let statuses: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"queued"));
    assert_eq!(statuses.last(), Some(&"failed"));
}

#[tokio::test]
async fn every_status_transition_is_checked_against_the_forward_only_rule() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let statuses = [
        "queued",
        "sending",
        "sent",
        "delivered",
        "failed",
        "bounced",
        "not_sent",
    ];
    let forward = [
        ("queued", "sending"),
        ("queued", "failed"),
        ("queued", "not_sent"),
        ("sending", "sent"),
        ("sending", "failed"),
        ("sent", "delivered"),
        ("sent", "failed"),
        ("sent", "bounced"),
    ];
    let mut conn = app.db.connect().await.unwrap();
    for from in statuses {
        for to in statuses {
            let allowed: bool =
                sqlx::query_scalar("SELECT notification_transition_allowed($1, $2)")
                    .bind(from)
                    .bind(to)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
            let expected = from == to || forward.contains(&(from, to));
            assert_eq!(allowed, expected, "{from} -> {to}");
        }
    }
}
