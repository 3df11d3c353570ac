//! The sandbox's behaviour over HTTP, in-process on a free port.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers fail the test loudly on a broken expectation"
)]

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use psp_sandbox::{Application, RunningSandbox, Settings};
use serde_json::{Value, json};
use tokio::sync::mpsc;

struct TestPsp {
    url: String,
    client: reqwest::Client,
    secret: String,
    _running: RunningSandbox,
}

impl TestPsp {
    async fn start(webhook_url: Option<String>) -> Self {
        let app = Application::build(Settings::ephemeral(webhook_url))
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let secret = app.webhook_secret();
        Self {
            url,
            client: reqwest::Client::new(),
            secret,
            _running: app.spawn(),
        }
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Bytes) {
        let mut request = self.client.post(format!("{}{path}", self.url)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.bytes().await.unwrap())
    }

    async fn authorize(&self, key: &str, card: &str, reference: &str) -> (StatusCode, Value) {
        let (status, body) = self
            .post(
                "/v1/authorizations",
                Some(key),
                &json!({"amount": 1250, "currency": "EUR", "card_number": card,
                        "reference": reference, "capture": false}),
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn configure(&self, config: Value) {
        let (status, _) = self.post("/__sandbox/config", None, &config).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn stats(&self) -> Value {
        self.get("/__sandbox/stats").await.1
    }
}

const OK_CARD: &str = "4242424242424242";

#[tokio::test]
async fn same_key_and_body_replays_the_first_answer_byte_for_byte() {
    let psp = TestPsp::start(None).await;
    let body =
        json!({"amount": 990, "currency": "EUR", "card_number": OK_CARD, "reference": "pay_1"});
    let first = psp.post("/v1/authorizations", Some("k1"), &body).await;
    let again = psp.post("/v1/authorizations", Some("k1"), &body).await;
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(first, again);
    assert_eq!(psp.stats().await["authorizations_created"], 1);
    assert_eq!(psp.stats().await["requests"], 2);
}

#[tokio::test]
async fn same_key_with_another_body_is_refused_with_422_and_changes_nothing() {
    let psp = TestPsp::start(None).await;
    psp.authorize("k1", OK_CARD, "pay_1").await;
    let (status, body) = psp
        .post(
            "/v1/authorizations",
            Some("k1"),
            &json!({"amount": 1, "currency": "EUR", "card_number": OK_CARD, "reference": "pay_1"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(psp.stats().await["authorizations_created"], 1);
}

#[tokio::test]
async fn keys_are_per_endpoint_and_required() {
    let psp = TestPsp::start(None).await;
    let (_, auth) = psp.authorize("shared", OK_CARD, "pay_1").await;
    let id = auth["id"].as_str().unwrap();
    let (status, body) = psp
        .post(
            &format!("/v1/authorizations/{id}/capture"),
            Some("shared"),
            &json!({"amount": 1250}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (missing, body) = psp
        .post(
            "/v1/refunds",
            None,
            &json!({"authorization_id": id, "amount": 1, "reference": "r"}),
        )
        .await;
    assert_eq!(missing, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("idempotency_key_missing"));
    assert_eq!(psp.stats().await["refunds"], 0);
}

#[tokio::test]
async fn declines_follow_the_card_are_stored_and_replayed() {
    let psp = TestPsp::start(None).await;
    let (status, body) = psp.authorize("d1", "4000000000000002", "pay_d").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["type"], "card_declined");
    assert_eq!(body["error"]["code"], "generic_decline");
    let (status, body) = psp.authorize("d2", "4000000000009995", "pay_d").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["code"], "insufficient_funds");
    let (status, again) = psp.authorize("d2", "4000000000009995", "pay_d").await;
    assert_eq!((status, &again), (StatusCode::PAYMENT_REQUIRED, &body));

    let (_, found) = psp.get("/v1/authorizations?reference=pay_d").await;
    let found = found["data"].as_array().unwrap();
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|a| a["status"] == "declined"));
    assert_eq!(found[1]["decline_code"], "insufficient_funds");
    assert_eq!(found[1]["id"], body["error"]["authorization_id"]);
    let stats = psp.stats().await;
    assert_eq!(
        (
            stats["authorizations_created"].as_u64(),
            stats["declines"].as_u64()
        ),
        (Some(0), Some(2))
    );
}

#[tokio::test]
async fn a_processing_error_is_not_stored_so_a_retry_is_processed_anew() {
    let psp = TestPsp::start(None).await;
    for _ in 0..2 {
        let (status, body) = psp.authorize("p1", "4000000000000119", "pay_p").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "processing_error");
    }
    assert_eq!(
        psp.get("/v1/authorizations?reference=pay_p").await.1["data"],
        json!([])
    );
    // The 500 was not recorded: the same key with another body is a new request.
    let (status, _) = psp.authorize("p1", OK_CARD, "pay_p").await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn malformed_input_is_a_400_invalid_request() {
    let psp = TestPsp::start(None).await;
    for body in [
        json!({"amount": "12", "currency": "EUR", "card_number": OK_CARD, "reference": "r"}),
        json!({"amount": 12, "currency": "eur", "card_number": OK_CARD, "reference": "r"}),
        json!({"amount": 12, "currency": "EUR", "card_number": "42", "reference": "r"}),
        json!({"amount": 12, "currency": "EUR", "card_number": OK_CARD}),
    ] {
        let (status, answer) = psp.post("/v1/authorizations", Some("m"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(String::from_utf8_lossy(&answer).contains("\"invalid_request\""));
    }
    let response = psp
        .client
        .post(format!("{}/v1/authorizations", psp.url))
        .header("Idempotency-Key", "raw")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(psp.stats().await["authorizations_created"], 0);
}

#[tokio::test]
async fn capture_void_and_refund_rules_hold_over_http() {
    let psp = TestPsp::start(None).await;
    let (_, auth) = psp.authorize("a", OK_CARD, "pay_c").await;
    let id = auth["id"].as_str().unwrap();
    let capture = format!("/v1/authorizations/{id}/capture");

    let (status, _) = psp
        .post(&capture, Some("c0"), &json!({"amount": 1251}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "more than authorized");
    let (status, body) = psp
        .post(&capture, Some("c1"), &json!({"amount": 1000}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (body["status"].as_str(), body["captured_amount"].as_i64()),
        (Some("captured"), Some(1000))
    );

    let (status, _) = psp
        .post(
            &format!("/v1/authorizations/{id}/void"),
            Some("v"),
            &json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "captured money cannot be voided"
    );

    let refund = |amount: i64, reference: &str| json!({"authorization_id": id, "amount": amount, "reference": reference});
    let (status, _) = psp
        .post("/v1/refunds", Some("r0"), &refund(1001, "ref_0"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "more than captured");
    let (status, first) = psp
        .post("/v1/refunds", Some("r1"), &refund(600, "ref_1"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let first: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["currency"], "EUR");
    let (status, _) = psp
        .post("/v1/refunds", Some("r2"), &refund(401, "ref_2"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "600 + 401 > 1000 captured");
    let (status, _) = psp
        .post("/v1/refunds", Some("r3"), &refund(400, "ref_3"))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, by_id) = psp
        .get(&format!("/v1/refunds/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(by_id, first);
    let (_, by_ref) = psp.get("/v1/refunds?reference=ref_1").await;
    assert_eq!(by_ref["data"], json!([first]));
    let (_, auth) = psp.get(&format!("/v1/authorizations/{id}")).await;
    assert_eq!(
        (
            auth["captured_amount"].as_i64(),
            auth["refunded_amount"].as_i64()
        ),
        (Some(1000), Some(1000))
    );
    assert_eq!(
        psp.get("/v1/authorizations/auth_nope").await.0,
        StatusCode::NOT_FOUND
    );

    let stats = psp.stats().await;
    assert_eq!(
        (
            stats["captures"].as_u64(),
            stats["refunds"].as_u64(),
            stats["voids"].as_u64()
        ),
        (Some(1), Some(2), Some(0))
    );
}

#[tokio::test]
async fn an_uncaptured_authorization_can_be_voided_once() {
    let psp = TestPsp::start(None).await;
    let (_, auth) = psp.authorize("a", OK_CARD, "pay_v").await;
    let void = format!("/v1/authorizations/{}/void", auth["id"].as_str().unwrap());
    let (status, body) = psp.post(&void, Some("v1"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("\"voided\""));
    assert_eq!(
        psp.post(&void, Some("v2"), &json!({})).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(psp.stats().await["voids"], 1);
}

#[tokio::test]
async fn the_slow_card_authorizes_and_the_status_query_finds_it_after_a_timeout() {
    let psp = TestPsp::start(None).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let attempt = impatient
        .post(format!("{}/v1/authorizations", psp.url))
        .header("Idempotency-Key", "slow-1")
        .json(&json!({"amount": 500, "currency": "EUR", "card_number": "4000000000000341", "reference": "pay_slow"}))
        .send()
        .await;
    assert!(
        attempt.unwrap_err().is_timeout(),
        "the caller must time out"
    );

    let (status, found) = psp.get("/v1/authorizations?reference=pay_slow").await;
    assert_eq!(status, StatusCode::OK);
    let found = found["data"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["status"], "authorized");
    assert_eq!(found[0]["amount"], 500);
}

#[tokio::test]
async fn injected_failures_do_nothing_and_timeouts_do_the_work() {
    let psp = TestPsp::start(None).await;
    psp.configure(json!({"fail_next": 2, "fail_status": 503}))
        .await;
    for _ in 0..2 {
        let (status, _) = psp.authorize("f1", OK_CARD, "pay_f").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let (status, created) = psp.authorize("f1", OK_CARD, "pay_f").await;
    assert_eq!(status, StatusCode::CREATED);

    psp.configure(json!({"timeout_next": 1})).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let body = json!({"amount": 1250, "currency": "EUR", "card_number": OK_CARD, "reference": "pay_t", "capture": false});
    let attempt = impatient
        .post(format!("{}/v1/authorizations", psp.url))
        .header("Idempotency-Key", "t1")
        .json(&body)
        .send()
        .await;
    assert!(attempt.unwrap_err().is_timeout());
    // The retry with the same key gets the recorded answer at once.
    let (status, replayed) = psp.authorize("t1", OK_CARD, "pay_t").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(replayed["id"], created["id"]);

    let stats = psp.stats().await;
    assert_eq!(stats["failures_injected"], 2);
    assert_eq!(stats["timeouts_injected"], 1);
    assert_eq!(stats["authorizations_created"], 2);

    psp.configure(json!({"failure_rate": 1.0, "fail_status": 429}))
        .await;
    let (status, body) = psp.authorize("r1", OK_CARD, "pay_r").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let (status, _) = psp
        .post("/__sandbox/config", None, &json!({"failure_rate": 2.0}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = psp.post("/__sandbox/reset", None, &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(psp.stats().await["authorizations_created"], 0);
    assert_eq!(psp.get("/v1/authorizations").await.1["data"], json!([]));
    assert_eq!(
        psp.authorize("r1", OK_CARD, "pay_r").await.0,
        StatusCode::CREATED
    );
}

/// A webhook receiver: answers `statuses` in turn (then 200) and hands every
/// request over.
async fn receiver(
    statuses: Vec<StatusCode>,
) -> (String, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    #[derive(Clone)]
    struct Recv {
        tx: mpsc::UnboundedSender<(HeaderMap, Bytes)>,
        statuses: std::sync::Arc<std::sync::Mutex<Vec<StatusCode>>>,
    }
    async fn handle(State(r): State<Recv>, headers: HeaderMap, body: Bytes) -> StatusCode {
        r.tx.send((headers, body)).unwrap();
        let mut statuses = r.statuses.lock().unwrap();
        if statuses.is_empty() {
            StatusCode::OK
        } else {
            statuses.remove(0)
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route("/hook", post(handle)).with_state(Recv {
        tx,
        statuses: std::sync::Arc::new(std::sync::Mutex::new(statuses)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

async fn next_webhook(
    rx: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) -> (String, Bytes, Value) {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("a webhook within 20 s")
        .unwrap();
    let signature = headers["psp-signature"].to_str().unwrap().to_owned();
    let event = serde_json::from_slice(&body).unwrap();
    (signature, body, event)
}

/// An independent check of the signature scheme: HMAC-SHA256 over "<t>.<body>".
fn signature_is_valid(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let (t, v1) = header.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap()).is_ok()
}

#[tokio::test]
async fn state_changes_are_sent_as_signed_webhooks_and_retried() {
    let (url, mut hooks) = receiver(vec![StatusCode::INTERNAL_SERVER_ERROR]).await;
    let psp = TestPsp::start(Some(url)).await;
    let (status, auth) = psp.authorize("w1", OK_CARD, "pay_w").await;
    assert_eq!(status, StatusCode::CREATED);

    let (signature, body, first) = next_webhook(&mut hooks).await;
    assert!(
        signature_is_valid(&psp.secret, &signature, &body),
        "{signature}"
    );
    assert!(!signature_is_valid("wrong", &signature, &body));
    assert!(psp_sandbox::webhook::verify(&psp.secret, &signature, &body));
    assert_eq!(first["type"], "authorization.authorized");
    assert_eq!(first["data"], auth);
    assert!(first["id"].as_str().unwrap().starts_with("evt_"));
    assert!(first["created"].as_i64().unwrap() > 1_600_000_000);

    // The receiver answered 500: the same event comes again.
    let (signature, body, retried) = next_webhook(&mut hooks).await;
    assert_eq!(retried["id"], first["id"]);
    assert!(signature_is_valid(&psp.secret, &signature, &body));

    // A resend and an emitted event are signed alike.
    let event_id = first["id"].as_str().unwrap();
    let (status, _) = psp
        .post(
            &format!("/__sandbox/webhooks/{event_id}/resend"),
            None,
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, _, resent) = next_webhook(&mut hooks).await;
    assert_eq!(resent["id"], first["id"]);

    let (status, emitted) = psp
        .post(
            "/__sandbox/webhooks/emit",
            None,
            &json!({"type": "refund.succeeded", "data": {"id": "re_unknown"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let emitted: Value = serde_json::from_slice(&emitted).unwrap();
    let (signature, body, received) = next_webhook(&mut hooks).await;
    assert!(signature_is_valid(&psp.secret, &signature, &body));
    assert_eq!(received, emitted);
    assert_eq!(received["data"]["id"], "re_unknown");

    let (status, _) = psp
        .post("/__sandbox/webhooks/evt_unknown/resend", None, &json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn captures_and_refunds_are_announced_too() {
    let (url, mut hooks) = receiver(Vec::new()).await;
    let psp = TestPsp::start(Some(url)).await;
    let (_, auth) = psp
        .post(
            "/v1/authorizations",
            Some("c"),
            &json!({"amount": 300, "currency": "EUR", "card_number": OK_CARD, "reference": "pay_x", "capture": true}),
        )
        .await;
    let auth: Value = serde_json::from_slice(&auth).unwrap();
    assert_eq!(auth["status"], "captured");
    let (_, _, event) = next_webhook(&mut hooks).await;
    assert_eq!(event["type"], "authorization.captured");
    psp.post(
        "/v1/refunds",
        Some("r"),
        &json!({"authorization_id": auth["id"], "amount": 100, "reference": "rf"}),
    )
    .await;
    let (_, _, event) = next_webhook(&mut hooks).await;
    assert_eq!(event["type"], "refund.succeeded");
    assert_eq!(event["data"]["amount"], 100);
    psp.authorize("d", "4000000000000002", "pay_y").await;
    let (_, _, event) = next_webhook(&mut hooks).await;
    assert_eq!(event["type"], "authorization.declined");
    assert_eq!(event["data"]["status"], "declined");
}

/// A test can tell which of its requests reached the provider while it was
/// failing: the injected failures are listed with the reference each body
/// named, filtered by a prefix, and cleared by a reset.
#[tokio::test]
async fn injected_failures_are_listed_by_reference() {
    let psp = TestPsp::start(None).await;
    psp.configure(json!({"fail_next": 2, "fail_status": 503}))
        .await;
    psp.authorize("k1", OK_CARD, "pay_a.a1").await;
    psp.authorize("k2", OK_CARD, "pay_b.a1").await;
    let (status, _) = psp.authorize("k3", OK_CARD, "pay_a.a2").await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, all) = psp.get("/__sandbox/failures").await;
    assert_eq!(
        all["data"],
        json!([
            {"endpoint": "/v1/authorizations", "reference": "pay_a.a1", "status": 503},
            {"endpoint": "/v1/authorizations", "reference": "pay_b.a1", "status": 503},
        ])
    );
    let (_, only_b) = psp.get("/__sandbox/failures?reference_prefix=pay_b").await;
    assert_eq!(only_b["data"].as_array().map(Vec::len), Some(1), "{only_b}");

    psp.post("/__sandbox/reset", None, &json!({})).await;
    let (_, after) = psp.get("/__sandbox/failures").await;
    assert_eq!(after["data"], json!([]));
}

#[tokio::test]
async fn health_answers() {
    let psp = TestPsp::start(None).await;
    let response = reqwest::get(format!("{}/healthz", psp.url)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
