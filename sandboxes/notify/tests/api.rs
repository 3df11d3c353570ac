//! The sandbox's behaviour over HTTP, in-process on a free port.
#![expect(
    clippy::unwrap_used,
    reason = "helpers fail the test loudly on a broken expectation"
)]

use std::time::Duration;

use notify_sandbox::{Application, RunningSandbox, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct TestNotify {
    url: String,
    client: reqwest::Client,
    _running: RunningSandbox,
}

impl TestNotify {
    async fn start() -> Self {
        let app = Application::build(Settings::ephemeral()).await.unwrap();
        Self {
            url: format!("http://127.0.0.1:{}", app.port()),
            client: reqwest::Client::new(),
            _running: app.spawn(),
        }
    }

    async fn send(
        &self,
        provider: &str,
        key: Option<&str>,
        body: &Value,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self
            .client
            .post(format!("{}/{provider}/messages", self.url))
            .json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            response.status(),
            retry_after,
            response.json().await.unwrap(),
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn configure(&self, provider: &str, config: Value) -> StatusCode {
        self.client
            .post(format!("{}/__sandbox/{provider}/config", self.url))
            .json(&config)
            .send()
            .await
            .unwrap()
            .status()
    }
}

fn sms(to: &str, reference: &str) -> Value {
    json!({"to": to, "body": "Your booking is confirmed", "reference": reference})
}

#[tokio::test]
async fn an_sms_is_accepted_and_listed_by_recipient_and_reference() {
    let notify = TestNotify::start().await;
    let (status, _, answer) = notify
        .send("sms-primary", None, &sms("+4915112345678", "n1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(answer["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(answer["provider"], "sms-primary");
    assert_eq!(answer["status"], "accepted");
    assert_eq!(
        (answer["to"].as_str(), answer["reference"].as_str()),
        (Some("+4915112345678"), Some("n1"))
    );
    notify
        .send("sms-primary", None, &sms("+4915199999999", "n2"))
        .await;

    let (_, listed) = notify
        .get("/sms-primary/messages?to=%2B4915112345678")
        .await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], answer["id"]);
    assert_eq!(listed[0]["body"], "Your booking is confirmed");
    let (_, by_reference) = notify.get("/sms-primary/messages?reference=n2").await;
    assert_eq!(by_reference["data"].as_array().unwrap().len(), 1);
    let (_, other) = notify.get("/sms-secondary/messages").await;
    assert_eq!(other["data"], json!([]));
}

#[tokio::test]
async fn a_push_is_accepted_with_its_title() {
    let notify = TestNotify::start().await;
    let push =
        json!({"to": "device-token-1", "title": "Booking", "body": "Confirmed", "reference": "n1"});
    let (status, _, _) = notify.send("push", None, &push).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, listed) = notify.get("/push/messages?to=device-token-1").await;
    assert_eq!(listed["data"][0]["title"], "Booking");
}

#[tokio::test]
async fn the_same_idempotency_key_sends_once() {
    let notify = TestNotify::start().await;
    let first = notify
        .send("sms-primary", Some("k1"), &sms("+4915112345678", "n1"))
        .await;
    let again = notify
        .send("sms-primary", Some("k1"), &sms("+4915112345678", "n1"))
        .await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    assert_eq!(first, again);
    let (_, listed) = notify.get("/sms-primary/messages").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let (_, stats) = notify.get("/__sandbox/stats").await;
    assert_eq!(stats["sms-primary"]["accepted"], 1);
}

#[tokio::test]
async fn bad_input_and_invalid_recipients_are_permanent_400s() {
    let notify = TestNotify::start().await;
    let (status, _, body) = notify
        .send("sms-primary", None, &json!({"to": "+4915112345678"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (status, _, body) = notify
        .send("sms-primary", None, &sms("+15005550001", "n1"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_recipient"))
    );
    let push = json!({"to": "invalid-token", "title": "T", "body": "B", "reference": "n1"});
    let (status, _, body) = notify.send("push", None, &push).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_recipient"))
    );
    let (status, _, _) = notify.send("fax", None, &sms("+4915112345678", "n1")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, stats) = notify.get("/__sandbox/stats").await;
    assert_eq!(stats["sms-primary"]["rejected"], 2);
    assert_eq!(stats["push"]["rejected"], 1);
    assert_eq!(stats["sms-primary"]["accepted"], 0);
}

#[tokio::test]
async fn fail_next_fails_then_accepts_and_fail_mode_always_fails() {
    let notify = TestNotify::start().await;
    assert_eq!(
        notify
            .configure("sms-primary", json!({"fail_next": 2, "fail_status": 500}))
            .await,
        StatusCode::OK
    );
    for _ in 0..2 {
        let (status, _, _) = notify
            .send("sms-primary", Some("k"), &sms("+4915112345678", "n1"))
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    let (status, _, _) = notify
        .send("sms-primary", Some("k"), &sms("+4915112345678", "n1"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    notify
        .configure("sms-secondary", json!({"mode": "fail", "fail_status": 400}))
        .await;
    for _ in 0..3 {
        let (status, _, _) = notify
            .send("sms-secondary", None, &sms("+4915112345678", "n1"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (_, stats) = notify.get("/__sandbox/stats").await;
    assert_eq!(
        stats,
        json!({
            "sms-primary": {"accepted": 1, "rejected": 2, "replayed": 0},
            "sms-secondary": {"accepted": 0, "rejected": 3, "replayed": 0},
            "push": {"accepted": 0, "rejected": 0, "replayed": 0},
        })
    );
    assert_eq!(
        notify.configure("push", json!({"mode": "sideways"})).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn throttle_answers_429_with_retry_after() {
    let notify = TestNotify::start().await;
    notify
        .configure("sms-primary", json!({"mode": "throttle"}))
        .await;
    let (status, retry_after, body) = notify
        .send("sms-primary", None, &sms("+4915112345678", "n1"))
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "throttled");
    notify
        .configure("sms-primary", json!({"mode": "accept"}))
        .await;
    assert_eq!(
        notify
            .send("sms-primary", None, &sms("+4915112345678", "n1"))
            .await
            .0,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn delay_mode_accepts_but_answers_late() {
    let notify = TestNotify::start().await;
    notify
        .configure("sms-primary", json!({"mode": "delay", "delay_ms": 30000}))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let attempt = impatient
        .post(format!("{}/sms-primary/messages", notify.url))
        .json(&sms("+4915112345678", "late"))
        .send()
        .await;
    assert!(attempt.unwrap_err().is_timeout());
    let (_, listed) = notify.get("/sms-primary/messages?reference=late").await;
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "accepted although the answer never came"
    );
}

#[tokio::test]
async fn reset_forgets_messages_config_and_stats() {
    let notify = TestNotify::start().await;
    notify
        .send(
            "push",
            None,
            &json!({"to": "t", "title": "T", "body": "B", "reference": "r"}),
        )
        .await;
    notify.configure("push", json!({"mode": "throttle"})).await;
    let status = notify
        .client
        .post(format!("{}/__sandbox/reset", notify.url))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(notify.get("/push/messages").await.1["data"], json!([]));
    assert_eq!(
        notify.get("/__sandbox/stats").await.1["push"]["accepted"],
        0
    );
    assert_eq!(
        notify.get("/__sandbox/push/config").await.1["mode"],
        "accept"
    );
    assert_eq!(notify.get("/healthz").await.0, StatusCode::OK);
}

/// A receiver of receipts: records `(signature, body)`; the first
/// `refuse_first` posts are answered 503.
#[derive(Clone, Default)]
struct Receiver {
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    refused: std::sync::Arc<std::sync::atomic::AtomicU32>,
    refuse_first: u32,
}

impl Receiver {
    async fn start(refuse_first: u32) -> (Self, String) {
        let receiver = Self {
            refuse_first,
            ..Self::default()
        };
        let state = receiver.clone();
        let router = axum::Router::new().route(
            "/receipts",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: String| async move {
                    use std::sync::atomic::Ordering;
                    if state.refused.fetch_add(1, Ordering::SeqCst) < state.refuse_first {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signature = headers
                        .get(notify_sandbox::SIGNATURE_HEADER)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    state.seen.lock().unwrap().push((signature, body));
                    axum::http::StatusCode::OK
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/receipts", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..200 {
            let seen = self.seen.lock().unwrap().clone();
            if seen.len() >= n {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} receipts never arrived");
    }
}

fn check_signature(signature: &str, body: &str) {
    let t: i64 = signature
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        notify_sandbox::sign_receipt("notify_local_sandbox", t, body.as_bytes())
    );
}

#[tokio::test]
async fn an_accepted_message_with_a_status_callback_gets_a_signed_receipt() {
    let notify = TestNotify::start().await;
    let (receiver, url) = Receiver::start(1).await;
    let (status, _, accepted) = notify
        .send(
            "sms-primary",
            Some("k1"),
            &json!({"to": "+4915112345678", "body": "Hi", "reference": "n-1", "status_callback": url}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The first post is refused (503): the same receipt comes again.
    let seen = receiver.wait_for(1).await;
    let (signature, body) = &seen[0];
    check_signature(signature, body);
    let receipt: Value = serde_json::from_str(body).unwrap();
    assert!(receipt["id"].as_str().unwrap().starts_with("rcpt_"));
    assert_eq!(receipt["message_id"], accepted["id"]);
    assert_eq!(receipt["reference"], "n-1");
    assert_eq!(receipt["status"], "delivered");
    assert!(receipt["occurred_at"].is_string());

    // The sandbox notes the answer after the receiver has seen the post.
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = notify.get("/__sandbox/receipts?reference=n-1").await.1;
        if listed["data"][0]["delivered"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = &listed["data"][0];
    assert_eq!(record["receipt"]["id"], receipt["id"]);
    assert_eq!(record["provider"], "sms-primary");
    assert_eq!(record["attempts"], 2);
    assert_eq!(record["delivered"], true);

    // An idempotent replay is not a second message, so no second receipt.
    notify
        .send(
            "sms-primary",
            Some("k1"),
            &json!({"to": "+4915112345678", "body": "Hi", "reference": "n-1", "status_callback": url}),
        )
        .await;
    let (_, listed) = notify.get("/__sandbox/receipts").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bouncing_recipients_and_the_receipt_setting_report_undeliverable() {
    let notify = TestNotify::start().await;
    let (receiver, url) = Receiver::start(0).await;
    notify
        .send(
            "sms-secondary",
            None,
            &json!({"to": notify_sandbox::BOUNCING_SMS_RECIPIENT, "body": "Hi", "reference": "a", "status_callback": url}),
        )
        .await;
    notify
        .send(
            "push",
            None,
            &json!({"to": notify_sandbox::BOUNCING_PUSH_RECIPIENT, "title": "T", "body": "B", "reference": "b", "status_callback": url}),
        )
        .await;
    assert_eq!(
        notify
            .configure("sms-primary", json!({"receipt": "undeliverable"}))
            .await,
        StatusCode::OK
    );
    notify
        .send(
            "sms-primary",
            None,
            &json!({"to": "+4915112345678", "body": "Hi", "reference": "c", "status_callback": url}),
        )
        .await;
    notify
        .send(
            "push",
            None,
            &json!({"to": "device-1", "title": "T", "body": "B", "reference": "d", "status_callback": url}),
        )
        .await;
    let seen = receiver.wait_for(4).await;
    let mut statuses: Vec<(String, String)> = seen
        .iter()
        .map(|(signature, body)| {
            check_signature(signature, body);
            let receipt: Value = serde_json::from_str(body).unwrap();
            (
                receipt["reference"].as_str().unwrap().to_owned(),
                receipt["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("a".to_owned(), "undeliverable".to_owned()),
            ("b".to_owned(), "undeliverable".to_owned()),
            ("c".to_owned(), "undeliverable".to_owned()),
            ("d".to_owned(), "delivered".to_owned()),
        ]
    );
    // Without a status_callback nothing is posted.
    let (status, _, _) = notify
        .send(
            "push",
            None,
            &json!({"to": "device-2", "title": "T", "body": "B", "reference": "e"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, listed) = notify.get("/__sandbox/receipts?reference=e").await;
    assert_eq!(listed["data"], json!([]));
}
