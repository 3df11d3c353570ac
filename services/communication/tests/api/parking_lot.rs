//! communication's parking lot (docs/adr/0029): its rejections on
//! `payments.deadletter` are parked as poison in its own database, stay
//! there until an operator re-drives them, and the operator API needs
//! `communication:admin`. (The outage path, parking and automatic re-drive
//! of transient letters, is the consumer kit's and is proven end to end in
//! bookkeeping's tests/api/parking_lot.rs.)

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, authorized_client, new_id, payment_succeeded, with_notify};

fn admin(app: &TestApp) -> reqwest::Client {
    let token = app.issuer.token("communication", &["communication:admin"]);
    authorized_client(&token).unwrap()
}

async fn parked(app: &TestApp) -> Vec<Value> {
    let res = admin(app)
        .get(app.url("/v1/admin/parked-letters?limit=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_rejected_event_is_parked_as_poison_and_waits_for_an_operator() {
    let (_notify, app) = with_notify(|s| {
        s.parking_lot.redrive_interval_ms = 300;
        s.parking_lot.backoff_initial_ms = 500;
    })
    .await;
    let id = new_id("evt");
    let mut data = payment_succeeded("pay_pk", "cust-pk", 500);
    data.as_object_mut().unwrap().remove("currency");
    app.publish_event("payments", &id, "payments.payment.succeeded", data)
        .await;

    let letter = platform_test_support::eventually(
        Duration::from_secs(60),
        "the rejection parked",
        || async {
            parked(&app)
                .await
                .into_iter()
                .find(|l| l["event_id"] == id.as_str())
        },
    )
    .await
    .unwrap();
    assert_eq!(letter["classification"], "poison", "{letter}");
    assert_eq!(letter["topic"], "payments");
    assert!(
        letter["reason"].as_str().unwrap().contains("currency"),
        "{letter}"
    );

    // Not re-driven by itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = parked(&app).await;
    let now = still.iter().find(|l| l["event_id"] == id.as_str()).unwrap();
    assert_eq!(now["attempts"], letter["attempts"], "{now}");

    // The operator's re-drive runs the handler again: still poison, still
    // no notification.
    let res = admin(&app)
        .post(app.url(&format!(
            "/v1/admin/parked-letters/{}/redrive",
            letter["id"]
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["settled"], "poison", "{body}");
    assert!(app.notifications().await.is_empty());
}

#[tokio::test]
async fn a_service_down_longer_than_the_retry_budget_loses_no_event() {
    // The sidecar keeps trying while the service is down; each event's
    // inbound retries (≤ 30.6 s of back-off, dapr-config/resiliency/
    // resiliency.yaml) run out, and it is moved to payments.deadletter. The
    // restart-mid-batch flake of the timeout hierarchy (docs/adr/0026) is
    // this path, taken by chance.
    let (_notify, mut app) = with_notify(|s| s.parking_lot.redrive_interval_ms = 300).await;
    const N: usize = 5;
    let ids: Vec<String> = (0..N).map(|_| new_id("evt")).collect();
    for i in 0..N {
        app.put_recipient(
            &format!("cust-d{i}"),
            serde_json::json!({"phone": "+4915112345678"}),
        )
        .await;
    }
    let stopped = app.app.take().unwrap();
    stopped.stop().await.unwrap();
    for (i, id) in ids.iter().enumerate() {
        app.publish_event(
            "payments",
            id,
            "payments.payment.succeeded",
            payment_succeeded(&format!("pay_d{i}"), &format!("cust-d{i}"), 100),
        )
        .await;
    }
    app.restart_after(Duration::from_secs(45)).await;

    let notifications = platform_test_support::eventually(
        Duration::from_secs(60),
        "a notification per event",
        || async {
            let all = app.notifications().await;
            (all.len() >= N).then_some(all)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
    assert_eq!(notifications.len(), N, "{notifications:?}");
    for i in 0..N {
        let recipient = format!("cust-d{i}");
        assert_eq!(
            notifications.iter().filter(|n| n.1 == recipient).count(),
            1,
            "{recipient}: {notifications:?}"
        );
    }
    // Every event came back through the parking lot.
    let redriven = parked_with_status(&app, "redriven").await;
    for id in &ids {
        assert!(
            redriven.iter().any(|l| l["event_id"] == id.as_str()),
            "{id} not re-driven: {redriven:?}"
        );
    }
    assert!(parked(&app).await.is_empty());
}

async fn parked_with_status(app: &TestApp, status: &str) -> Vec<Value> {
    let res = admin(app)
        .get(app.url(&format!(
            "/v1/admin/parked-letters?status={status}&limit=100"
        )))
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_operator_api_needs_a_token_with_the_admin_scope() {
    let (_notify, app) = with_notify(|_| {}).await;
    let anonymous = reqwest::Client::new();
    for (method, path) in [
        (reqwest::Method::GET, "/v1/admin/parked-letters"),
        (reqwest::Method::GET, "/v1/admin/parked-letters/1"),
        (reqwest::Method::POST, "/v1/admin/parked-letters/1/redrive"),
        (reqwest::Method::POST, "/v1/admin/parked-letters/redrive"),
    ] {
        let res = anonymous
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        let res = app
            .http
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path} without the scope");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let res = admin(&app)
        .get(app.url("/v1/admin/parked-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
