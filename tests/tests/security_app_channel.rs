//! The app channel (issue #11 §2–3): the routes only a service's own
//! sidecar may call (`/events/*`, `/jobs/*`, input bindings,
//! `/dapr/subscribe`) refuse a request without that sidecar's app token
//! (`APP_API_TOKEN`, header `dapr-api-token`) with 401 problem+json, and
//! nothing is written. Real services, real sidecars with mTLS on.

use platform_test_support::{TestEnv, TestIssuer};
use platform_tests::{Platform, start_platform};
use serde_json::{Value, json};
use sqlx::PgConnection;

/// Rows of the tables a delivery could write, per service.
async fn rows(conn: &mut PgConnection, tables: &[&str]) -> anyhow::Result<Vec<(String, i64)>> {
    let mut counts = Vec::new();
    for table in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await?;
        counts.push(((*table).to_owned(), n));
    }
    Ok(counts)
}

const BOOKKEEPING_TABLES: &[&str] = &["entries", "postings", "inbox", "accounts", "statements"];
const COMMUNICATION_TABLES: &[&str] = &["notifications", "inbox", "outbox", "recipients"];
const PAYMENTS_TABLES: &[&str] = &["payments_state"];

async fn snapshot(platform: &Platform) -> anyhow::Result<Vec<Vec<(String, i64)>>> {
    Ok(vec![
        rows(
            &mut platform.bookkeeping.db.connect().await?,
            BOOKKEEPING_TABLES,
        )
        .await?,
        rows(
            &mut platform.communication.db.connect().await?,
            COMMUNICATION_TABLES,
        )
        .await?,
        rows(
            &mut platform.payments.state_db.connect().await?,
            PAYMENTS_TABLES,
        )
        .await?,
    ])
}

/// The forged event of the issue: a 999,999.99 EUR payment "succeeded",
/// as Dapr would deliver it.
fn forged_payment() -> Value {
    json!({
        "specversion": "1.0", "id": "evt_forged_1", "source": "payments",
        "type": "payments.payment.succeeded", "datacontenttype": "application/json",
        "topic": "payments", "pubsubname": "pubsub",
        "data": {
            "payment_id": "pay_forged", "amount": 99_999_999, "currency": "EUR",
            "customer_reference": "cus_mallory", "occurred_at": "2026-12-07T00:00:00Z",
        },
    })
}

async fn assert_refused(res: reqwest::Response, what: &str) {
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 401, "{what}: {body}");
    assert_eq!(content_type, "application/problem+json", "{what}");
    assert_eq!(body["code"], "app_token_required", "{what}: {body}");
}

#[tokio::test]
async fn dapr_facing_routes_refuse_anyone_but_their_own_sidecar_and_change_nothing() {
    let env = TestEnv::start().await.unwrap();
    let issuer = TestIssuer::start().await.unwrap();
    let platform = start_platform(&env, &issuer).await.unwrap();
    let http = reqwest::Client::new();
    let before = snapshot(&platform).await.unwrap();

    // First case: the forged payment posted straight to bookkeeping's port,
    // without a token, with a made-up one, with another sidecar's app token
    // and with bookkeeping's sidecar API token (not its app token).
    let book = &platform.bookkeeping;
    let forged_tokens: [(&str, Option<&str>); 4] = [
        ("no token", None),
        ("a made-up token", Some("forged")),
        (
            "payments' app token",
            Some(&platform.payments.daprd.options.app_token),
        ),
        (
            "bookkeeping's API token",
            Some(&book.daprd.options.api_token),
        ),
    ];
    for (what, token) in forged_tokens {
        let mut req = http
            .post(book.app.url("/events/payments"))
            .header("content-type", "application/cloudevents+json")
            .json(&forged_payment());
        if let Some(token) = token {
            req = req.header("dapr-api-token", token);
        }
        assert_refused(req.send().await.unwrap(), &format!("forged event, {what}")).await;
    }

    // Every other Dapr-facing route of every service, without the token.
    let routes = [
        (&book.app, reqwest::Method::POST, "/jobs/statements"),
        (&book.app, reqwest::Method::GET, "/dapr/subscribe"),
        // The parking lots' dead-letter deliveries (ADR 0029).
        (&book.app, reqwest::Method::POST, "/deadletters/payments"),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/deadletters/payments",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/deadletters/bookkeeping",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/events/payments",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/events/bookkeeping",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/events/bookings",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/deadletters/bookings",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/jobs/send",
        ),
        (
            &platform.communication.app,
            reqwest::Method::POST,
            "/jobs/send-failed",
        ),
        (
            &platform.communication.app,
            reqwest::Method::GET,
            "/dapr/subscribe",
        ),
        (
            &platform.payments.app,
            reqwest::Method::POST,
            "/payments-reconcile",
        ),
    ];
    for (app, method, path) in routes {
        let res = http
            .request(method.clone(), app.url(path))
            .header("content-type", "application/cloudevents+json")
            .json(&forged_payment())
            .send()
            .await
            .unwrap();
        assert_refused(res, &format!("{method} {path}")).await;
    }
    assert_eq!(
        snapshot(&platform).await.unwrap(),
        before,
        "nothing was written"
    );

    // The control: the same event with bookkeeping's own app token (what
    // its sidecar sends) is booked, so the counts above would have seen it.
    let res = http
        .post(book.app.url("/events/payments"))
        .header("content-type", "application/cloudevents+json")
        .header("dapr-api-token", &book.daprd.options.app_token)
        .json(&forged_payment())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let after = snapshot(&platform).await.unwrap();
    assert_ne!(after[0], before[0], "the sidecar's token lets the event in");
}
