use std::time::Duration;

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn valid_body() -> Value {
    json!({ "amount": 1250, "currency": "EUR", "customer_reference": "cus_42" })
}

#[tokio::test]
async fn a_created_payment_is_stored_and_its_event_published_through_the_outbox() {
    let app = TestApp::spawn().await;

    let res = app.create_payment(&valid_body()).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["status"], "requires_confirmation");
    assert_eq!(created["amount"], 1250);
    assert_eq!(created["currency"], "EUR");

    let fetched: Value = app.get_payment(&id).await.json().await.unwrap();
    assert_eq!(fetched, created);

    // The outbox publishes to the `payments` stream after the commit.
    let entries = eventually(
        Duration::from_secs(20),
        "the outbox event on the payments topic",
        || async {
            let reply = app
                .env
                .redis
                .command(&["XRANGE", "payments", "-", "+"])
                .await
                .ok()?;
            reply.contains("payments.payment.created").then_some(reply)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
    assert!(
        entries.contains(&id),
        "event does not name the payment: {entries}"
    );
    assert_eq!(app.env.redis.stream_len("payments").await.unwrap(), 1);
}

#[tokio::test]
async fn bad_input_is_a_4xx_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "amount": 0, "currency": "EUR", "customer_reference": "c" }),
            422,
            "invalid_amount",
        ),
        (
            json!({ "amount": -1, "currency": "EUR", "customer_reference": "c" }),
            422,
            "invalid_amount",
        ),
        (
            json!({ "amount": 100, "currency": "eur", "customer_reference": "c" }),
            422,
            "invalid_currency",
        ),
        (
            json!({ "amount": 100, "currency": "XYZ", "customer_reference": "c" }),
            422,
            "invalid_currency",
        ),
        (
            json!({ "amount": 100, "currency": "EUR", "customer_reference": "  " }),
            422,
            "invalid_field",
        ),
        (
            json!({ "amount": 1.5, "currency": "EUR", "customer_reference": "c" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "amount": 100, "currency": "EUR" }),
            422,
            "invalid_body",
        ),
        (
            json!({ "amount": 100, "currency": "EUR", "customer_reference": "c", "extra": 1 }),
            422,
            "invalid_body",
        ),
        // PostgreSQL cannot store NUL in JSON: refused before any write.
        (
            json!({ "amount": 100, "currency": "EUR", "customer_reference": "c\u{0}d" }),
            400,
            "control_characters",
        ),
        (
            json!({ "amount": 100, "currency": "EUR", "customer_reference": "line\nbreak" }),
            400,
            "control_characters",
        ),
    ];
    for (body, status, code) in cases {
        let res = app.create_payment(&body).await;
        assert_eq!(res.status(), status, "{body}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }
    let malformed = app
        .http
        .post(app.app.url("/v1/payments"))
        .header("content-type", "application/json")
        .body("{\"amount\":")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let filter = app
        .http
        .get(app.app.url("/v1/payments?customer_reference=c%00d"))
        .send()
        .await
        .unwrap();
    assert_eq!(filter.status(), 400);

    assert_eq!(app.payment_count().await, 0, "no payment may be stored");
    assert_eq!(
        crate::helpers::state_rows(&app.db, "outbox:").await,
        0,
        "no event may be queued"
    );
    assert_eq!(
        app.env.redis.stream_len("payments").await.unwrap(),
        0,
        "no event may be published"
    );
}

#[tokio::test]
async fn unknown_payments_are_404_problems() {
    let app = TestApp::spawn().await;
    for id in ["0193f5a4-0000-7000-8000-000000000000", "not-a-uuid"] {
        let res = app.get_payment(id).await;
        assert_eq!(res.status(), 404);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "payment_not_found");
    }
}

#[tokio::test]
async fn with_the_sidecar_gone_a_create_is_a_503_problem() {
    let TestApp {
        app,
        daprd,
        http,
        db,
        issuer: _issuer,
        ..
    } = TestApp::spawn().await;
    daprd.stop().await.unwrap();

    let res = http
        .post(app.url("/v1/payments"))
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "dependency_unavailable");
    assert_eq!(crate::helpers::payment_count(&db).await, 0);
}

#[tokio::test]
async fn with_redis_down_payments_stay_ready_and_saved_and_their_events_wait_in_the_outbox() {
    // Redis holds nothing payments must keep (ADR 0030): its records are in
    // PostgreSQL, its events wait there as outbox records.
    let mut app = TestApp::spawn().await;
    app.env.redis.stop().await.unwrap();

    let ready = reqwest::get(app.app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let res = app
        .http
        .post(app.app.url("/v1/payments"))
        .header("Idempotency-Key", "redis-down-1")
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(app.payment_count().await, 1);
    // Not published (no broker), not lost.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(crate::helpers::state_rows(&app.db, "outbox:").await, 1);
}

#[tokio::test]
async fn every_route_needs_a_token_with_the_right_scope() {
    let app = TestApp::spawn().await;
    let create = app.app.url("/v1/payments");

    let anonymous = reqwest::Client::new()
        .post(&create)
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(platform_test_support::www_authenticate(&anonymous).starts_with("Bearer"));

    let reader =
        crate::helpers::authorized_client(&app.issuer.token("payments", &["payments:read"]))
            .unwrap();
    assert_eq!(
        reader
            .post(&create)
            .json(&valid_body())
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let writer =
        crate::helpers::authorized_client(&app.issuer.token("payments", &["payments:write"]))
            .unwrap();
    let get = app
        .app
        .url("/v1/payments/0193f5a4-0000-7000-8000-000000000000");
    assert_eq!(writer.get(&get).send().await.unwrap().status(), 403);
    let other_audience =
        crate::helpers::authorized_client(&app.issuer.token("bookkeeping", &["payments:write"]))
            .unwrap();
    assert_eq!(
        other_audience
            .post(&create)
            .json(&valid_body())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        app.payment_count().await,
        0,
        "refused requests store nothing"
    );
}

#[tokio::test]
async fn payments_are_listed_in_creation_order_with_a_cursor_that_survives_new_payments() {
    let app = TestApp::spawn().await;
    let create = |customer: &'static str| {
        let app = &app;
        async move {
            let res = app
                .create_payment(
                    &json!({ "amount": 5, "currency": "EUR", "customer_reference": customer }),
                )
                .await;
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create("cus_list").await);
        create("cus_other").await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app
            .app
            .url("/v1/payments?customer_reference=cus_list&limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let res = app.http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        let page: Value = res.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2, "{page}");
        assert!(
            data.iter().all(|p| p["customer_reference"] == "cus_list"),
            "{page}"
        );
        seen.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        if page["has_more"] == false {
            assert!(page.get("next_cursor").is_none(), "{page}");
            break;
        }
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        // A payment created between two pages neither shifts nor repeats
        // what is listed: it comes at the end.
        if created.len() < 7 {
            created.push(create("cus_list").await);
        }
    }
    assert_eq!(seen, created, "creation order, each once");

    let all: Value = app
        .http
        .get(app.app.url("/v1/payments?limit=100"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 12);
    assert_eq!(all["has_more"], false);
    for bad in [
        "limit=0",
        "limit=101",
        "cursor=nope",
        "colour=red",
        "customer_reference=",
    ] {
        let res = app
            .http
            .get(app.app.url(&format!("/v1/payments?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad}");
    }
    let reader_only =
        crate::helpers::authorized_client(&app.issuer.token("payments", &["payments:write"]))
            .unwrap();
    assert_eq!(
        reader_only
            .get(app.app.url("/v1/payments"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
