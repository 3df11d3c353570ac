//! The parking lot (docs/adr/0029): events that reach `payments.deadletter`
//! are stored in bookkeeping's own database and re-driven, automatically
//! when their cause was transient, by an operator when they are poison.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{DEAD_LETTER_TOPIC, SUCCEEDED, TestApp, new_id, payment_succeeded};

const CLEARING: &str = "asset:psp-clearing:eur";

/// Short re-drive timers, so that a test waits seconds, not minutes.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|s| {
        s.parking_lot.redrive_interval_ms = 300;
        s.parking_lot.backoff_initial_ms = 500;
        s.parking_lot.backoff_max_ms = 2000;
    })
    .await
}

async fn parked(app: &TestApp, status: &str) -> Vec<Value> {
    let res = app
        .admin()
        .get(app.app.url(&format!(
            "/v1/admin/parked-letters?status={status}&limit=100"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_parked(app: &TestApp, status: &str, event_id: &str) -> Value {
    platform_test_support::eventually(
        Duration::from_secs(60),
        &format!("event {event_id} {status} in the parking lot"),
        || async {
            parked(app, status)
                .await
                .into_iter()
                .find(|l| l["event_id"] == event_id)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)))
}

#[tokio::test]
async fn an_outage_longer_than_the_retry_budget_ends_with_every_event_booked_once() {
    let app = spawn().await;
    const N: usize = 5;
    let ids: Vec<String> = (0..N).map(|_| new_id()).collect();

    app.database_outage().await;
    for (i, id) in ids.iter().enumerate() {
        app.publish_payment_event(id, SUCCEEDED, payment_succeeded(&format!("pay_o{i}"), 100))
            .await;
    }
    // The sidecar's inbound retries run out while the database is away:
    // every event is moved to the dead-letter topic.
    platform_test_support::eventually(
        Duration::from_secs(120),
        "every event on the dead-letter topic",
        || async {
            let letters = app.dead_letters().await;
            ids.iter()
                .all(|id| letters.iter().any(|l| l["id"] == id.as_str()))
                .then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
    // The outage goes on beyond one more retry budget of the dead-letter
    // subscription itself, which must not lose the letters either.
    tokio::time::sleep(Duration::from_secs(25)).await;
    app.database_back().await;

    // Every event is booked, by the re-drive, exactly once.
    platform_test_support::eventually(Duration::from_secs(120), "every event booked", || async {
        (app.balance_by_code(CLEARING).await == 100 * N as i64).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)));
    for id in &ids {
        assert_eq!(app.inbox_count("payments", id).await, 1);
        let letter = wait_parked(&app, "redriven", id).await;
        assert_eq!(letter["classification"], "transient", "{letter}");
        assert!(letter["redriven_at"].is_string(), "{letter}");
    }
    assert_eq!(app.entry_count().await, N as i64);
    assert!(parked(&app, "parked").await.is_empty());
    // Late copies (the loop through the dead-letter topic, a redelivery)
    // change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.balance_by_code(CLEARING).await, 100 * N as i64);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn a_poison_event_stays_parked_until_an_operator_redrives_it() {
    let app = spawn().await;
    let poison = new_id();
    app.publish_payment_event(&poison, SUCCEEDED, payment_succeeded("pay_p", -5))
        .await;
    let letter = wait_parked(&app, "parked", &poison).await;
    assert_eq!(letter["classification"], "poison", "{letter}");
    assert!(
        letter["reason"].as_str().unwrap().contains("positive"),
        "{letter}"
    );
    assert_eq!(letter["event"]["data"]["amount"], -5);
    assert!(letter["next_redrive_at"].is_null(), "{letter}");

    // A letter bookkeeping rejected with a bug since fixed: the event is
    // valid, but a rejection is poison, so only an operator re-drives it.
    let fixed = new_id();
    let event = json!({
        "specversion": "1.0", "id": fixed, "source": "payments", "type": SUCCEEDED,
        "datacontenttype": "application/json", "data": payment_succeeded("pay_f", 40),
    });
    let rejection = json!({
        "reason": "a bug since fixed", "topic": "payments",
        "rejected_by": "bookkeeping", "event": event,
    });
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1.0/publish/pubsub/{DEAD_LETTER_TOPIC}",
            app.daprd.http_base()
        ))
        // The sidecar API needs its token (ADR 0027).
        .header("dapr-api-token", &app.daprd.options.api_token)
        .header("content-type", "application/json")
        .query(&[("metadata.cloudevent.type", "bookkeeping.event.rejected")])
        .json(&rejection)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let fixed_letter = wait_parked(&app, "parked", &fixed).await;
    assert_eq!(fixed_letter["classification"], "poison");

    // Many re-drive intervals later, nothing was re-driven by itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (id, expected) in [(&poison, &letter), (&fixed, &fixed_letter)] {
        let now = wait_parked(&app, "parked", id).await;
        assert_eq!(now["attempts"], expected["attempts"], "{now}");
        assert_eq!(now["status"], "parked");
    }
    assert_eq!(app.inbox_count("payments", &fixed).await, 0);

    // The operator re-drives the fixed one: booked, once.
    let admin = app.admin();
    let url = |id: &Value| {
        app.app
            .url(&format!("/v1/admin/parked-letters/{id}/redrive"))
    };
    let res = admin.post(url(&fixed_letter["id"])).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["settled"], "redriven", "{body}");
    assert_eq!(body["letter"]["status"], "redriven");
    assert_eq!(app.inbox_count("payments", &fixed).await, 1);
    assert_eq!(app.balance_by_code(CLEARING).await, 40);
    // Again: refused, nothing changes.
    let res = admin.post(url(&fixed_letter["id"])).send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(app.balance_by_code(CLEARING).await, 40);

    // The truly poison one stays poison when re-driven: the handler ran
    // (one more attempt) and booked nothing.
    let res = admin.post(url(&letter["id"])).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["settled"], "poison", "{body}");
    assert_eq!(
        body["letter"]["attempts"].as_i64(),
        letter["attempts"].as_i64().map(|a| a + 1)
    );
    assert_eq!(app.inbox_count("payments", &poison).await, 0);
    assert_eq!(app.balance_by_code(CLEARING).await, 40);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn the_operator_api_pages_with_a_cursor_and_refuses_bad_queries() {
    let app = spawn().await;
    let ids: Vec<String> = (0..3).map(|_| new_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        app.publish_payment_event(id, SUCCEEDED, payment_succeeded(&format!("pay_b{i}"), -1))
            .await;
    }
    for id in &ids {
        wait_parked(&app, "parked", id).await;
    }
    let admin = app.admin();
    let page = |query: String| {
        let admin = admin.clone();
        let url = app.app.url(&format!("/v1/admin/parked-letters{query}"));
        async move {
            let res = admin.get(url).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = page("?limit=2".into()).await;
    assert_eq!(status, 200);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().unwrap().to_owned();
    let (_, second) = page(format!("?limit=2&after={next}")).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next"].is_null());
    let mut seen: Vec<Value> = first["items"].as_array().unwrap().clone();
    seen.extend(second["items"].as_array().unwrap().iter().cloned());
    for id in &ids {
        assert!(seen.iter().any(|l| l["event_id"] == id.as_str()));
    }

    let one = &seen[0];
    let (status, shown) = page(format!("/{}", one["id"])).await;
    assert_eq!(status, 200);
    assert_eq!(shown["event_id"], one["event_id"]);

    for bad in [
        "?limit=0",
        "?limit=101",
        "?after=x",
        "?status=lost",
        "?page=2",
    ] {
        let res = admin
            .get(app.app.url(&format!("/v1/admin/parked-letters{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let (status, body) = page("/999999".into()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "letter_not_found");

    // Re-drive all, as `make redrive SERVICE=bookkeeping` does it (the
    // script the target runs, with this test's token and address): every
    // letter handled; poison ones stay parked.
    let token = app.issuer.token("bookkeeping", &["bookkeeping:admin"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/redrive.sh");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .env("SERVICE", "bookkeeping")
        .env("SERVICE_URL", app.app.url("").trim_end_matches('/'))
        .env("TOKEN", &token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#""redriven":0"#) && stdout.contains(r#""still_parked":3"#),
        "{stdout}"
    );
    // Without the scope the script fails, and says why.
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .env("SERVICE", "bookkeeping")
        .env("SERVICE_URL", app.app.url("").trim_end_matches('/'))
        .env(
            "TOKEN",
            app.issuer.token("bookkeeping", &["bookkeeping:read"]),
        )
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("answered 403"));
}

#[tokio::test]
async fn the_operator_api_needs_a_token_with_the_admin_scope() {
    let app = spawn().await;
    let paths = [
        ("GET", "/v1/admin/parked-letters"),
        ("GET", "/v1/admin/parked-letters/1"),
        ("POST", "/v1/admin/parked-letters/1/redrive"),
        ("POST", "/v1/admin/parked-letters/redrive"),
    ];
    let anonymous = reqwest::Client::new();
    for (method, path) in paths {
        let method: reqwest::Method = method.parse().unwrap();
        let res = anonymous
            .request(method.clone(), app.app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        // read + write, but not admin.
        let res = app
            .http
            .request(method.clone(), app.app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path} without the scope");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let res = app
        .admin()
        .get(app.app.url("/v1/admin/parked-letters"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
