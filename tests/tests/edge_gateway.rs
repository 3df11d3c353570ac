//! The edge gateway (ADR 0025) against real Caddy, real gateway daprds and
//! real payments with its sidecar: what the edge refuses, how (problem+json
//! with a stable `code`), and that a request it lets through reaches the
//! service with its path and query untouched. Tokens come from a
//! [`RotatingIssuer`] (auth's token shape) so that expiry, audience and keys
//! can be chosen; `edge_auth.rs` runs the same gateway with auth itself.

use std::time::Duration;

use futures::future::join_all;
use platform_test_support::{
    EdgeGateway, EdgeOptions, PspSandbox, RotatingIssuer, TestEnv, TestIssuer, authorized_client,
};
use platform_tests::{Payments, start_payments};
use reqwest::StatusCode;
use serde_json::{Value, json};

const READ: &[&str] = &["payments:read"];
const READ_WRITE: &[&str] = &["payments:read", "payments:write"];

struct Edge {
    gateway: EdgeGateway,
    payments: Payments,
    issuer: RotatingIssuer,
    http: reqwest::Client,
    /// payments' provider (HTTPEndpoint `psp-edge` in `_endpoint`).
    psp: PspSandbox,
    _endpoint: tempfile::TempDir,
    // Last: outlives the processes that use its Redis and name resolution.
    _env: TestEnv,
}

#[expect(clippy::unwrap_used, reason = "test set-up fails the test loudly")]
async fn edge(client_rps: u32, prepare: impl FnOnce(&mut RotatingIssuer)) -> Edge {
    let env = TestEnv::start().await.unwrap();
    let mut issuer = RotatingIssuer::start().await.unwrap();
    prepare(&mut issuer);
    let unused = TestIssuer::start().await.unwrap();
    let psp = PspSandbox::start(None).await.unwrap();
    let endpoint = tempfile::tempdir().unwrap();
    psp.write_http_endpoint(endpoint.path(), "psp-edge")
        .unwrap();
    let payments = start_payments(&env, &unused, |settings, dapr| {
        issuer.apply_to(&mut settings.auth);
        dapr.extra_resources.push(endpoint.path().to_owned());
        settings.provider.endpoint = "psp-edge".into();
        settings.provider.webhook_secret = psp.webhook_secret().to_owned().into();
    })
    .await
    .unwrap();
    payments
        .app
        .wait_ready(Duration::from_secs(60))
        .await
        .unwrap();
    let gateway = EdgeGateway::start(
        &env,
        EdgeOptions {
            issuer: issuer.issuer().to_owned(),
            jwks_url: issuer.jwks_url().to_owned(),
            services: vec!["payments".into()],
            client_rps,
            ip_rps: 1000,
        },
    )
    .await
    .unwrap();
    Edge {
        gateway,
        payments,
        issuer,
        http: reqwest::Client::new(),
        psp,
        _endpoint: endpoint,
        _env: env,
    }
}

/// Status, headers and JSON body of an answer.
#[expect(clippy::unwrap_used, reason = "a test helper")]
async fn answer(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = request.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// A rejection written by the edge: problem+json with `code`.
fn assert_edge_problem(
    what: &str,
    (status, headers, body): &(StatusCode, reqwest::header::HeaderMap, Value),
    expected: StatusCode,
    code: &str,
) {
    assert_eq!(*status, expected, "{what}: {body}");
    assert_eq!(
        header(headers, "content-type"),
        "application/problem+json",
        "{what}"
    );
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(body["status"], expected.as_u16(), "{what}: {body}");
}

impl Edge {
    fn token(&self, audience: &str, client: &str, scopes: &[&str]) -> String {
        self.issuer.token(0, audience, client, scopes, 300)
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let req = self.http.get(self.gateway.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// How many requests the provider has received so far.
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    async fn psp_requests(&self) -> u64 {
        let stats = self.psp.stats().await.unwrap();
        stats["requests"].as_u64().unwrap()
    }

    /// Creates a payment through the gateway; returns its id.
    #[expect(clippy::unwrap_used, reason = "a test helper")]
    async fn create_payment(&self, token: &str, reference: &str) -> String {
        let (status, _, body) = answer(
            self.http
                .post(self.gateway.url("/payments/v1/payments"))
                .bearer_auth(token)
                .header("Idempotency-Key", uuid_like())
                .json(
                    &json!({ "amount": 1250, "currency": "EUR", "customer_reference": reference }),
                ),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{body}\n{}",
            self.gateway.logs(20)
        );
        body["id"].as_str().unwrap().to_owned()
    }
}

fn uuid_like() -> String {
    format!(
        "edge-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

#[tokio::test]
async fn a_valid_token_reaches_the_service_with_path_and_query_as_sent() {
    let edge = edge(1000, |_| {}).await;
    let token = edge.token("payments", "client-a", READ_WRITE);
    let id = edge.create_payment(&token, "cus edge/1&a=b").await;
    edge.create_payment(&token, "cus_other").await;
    edge.create_payment(&token, "cus edge/1&a=b").await;

    // A client-sent Dapr-App-Id does not pick the app: Caddy sets it.
    let (status, _, body) = answer(
        edge.get(&format!("/payments/v1/payments/{id}"), Some(&token))
            .header("Dapr-App-Id", "auth"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id.as_str());

    // The query reaches the service as sent (percent-encoding included):
    // the filter and the limit both apply.
    let (status, _, body) = answer(edge.get(
        "/payments/v1/payments?customer_reference=cus%20edge%2F1%26a%3Db&limit=1",
        Some(&token),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(page.len(), 1, "{body}");
    assert_eq!(page[0]["customer_reference"], "cus edge/1&a=b", "{body}");
    assert_eq!(body["has_more"], true, "{body}");

    // The service's own errors pass untouched (its code, not the edge's).
    let (status, headers, body) = answer(edge.get(
        "/payments/v1/payments/pay_missing?x=1&y=a%20b",
        Some(&token),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
    assert_eq!(body["code"], "payment_not_found");
}

/// A service's 503 is its answer, not a lost request: the edge passes it
/// to the client once (with its `Retry-After`) and does not send the
/// request again. Resending it would turn a circuit breaker's fail-fast
/// refusal into seconds and a timed-out POST into a second attempt
/// (ADR 0025). Counted at the provider: a confirmation through the edge
/// reaches it exactly as often as one sent to payments directly.
#[tokio::test]
async fn a_service_503_reaches_the_client_once_and_is_not_sent_again() {
    let edge = edge(1000, |_| {}).await;
    let token = edge.token("payments", "client-a", READ_WRITE);
    edge.psp
        .configure(json!({ "failure_rate": 1.0, "fail_status": 503 }))
        .await
        .unwrap();

    // A fresh payment confirmed at `base` (payments itself, or payments
    // through the edge): the answer and how many provider calls it made.
    let direct = authorized_client(&token).unwrap();
    let confirm = async |base: &str, reference: &str| {
        let id = edge.create_payment(&token, reference).await;
        let before = edge.psp_requests().await;
        let answered = answer(
            direct
                .post(format!("{base}/v1/payments/{id}/confirm"))
                .header("Idempotency-Key", uuid_like())
                .json(&json!({ "card_number": "4242424242424242" })),
        )
        .await;
        assert_edge_problem(
            base,
            &answered,
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
        );
        assert!(
            !header(&answered.1, "retry-after").is_empty(),
            "{base}: a 503 without Retry-After: {:?}",
            answered.1
        );
        edge.psp_requests().await - before
    };
    let at_payments = confirm(&edge.payments.app.url(""), "cus_direct").await;
    assert!(at_payments >= 1, "the provider was not called");
    let through_edge = confirm(&edge.gateway.url("/payments"), "cus_edge").await;
    assert_eq!(
        through_edge, at_payments,
        "the edge sent the confirmation {through_edge} / {at_payments} times"
    );
}

#[tokio::test]
async fn every_rejection_at_the_edge_is_problem_json_with_a_stable_code() {
    let edge = edge(1000, |_| {}).await;
    let path = "/payments/v1/payments/pay_any";

    // No token: 401 with a bare Bearer challenge.
    let no_token = answer(edge.get(path, None)).await;
    assert_edge_problem(
        "no token",
        &no_token,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_eq!(
        header(&no_token.1, "www-authenticate"),
        r#"Bearer realm="lisasports""#
    );

    // Bad tokens: 401 with error="invalid_token".
    let valid = edge.token("payments", "client-a", READ);
    let wrong_audience = edge.token("bookkeeping", "client-a", READ);
    // bearer allows a fixed 5-minute clock skew: expired 10 minutes ago.
    let expired = edge.issuer.token(0, "payments", "client-a", READ, -600);
    let tampered = {
        // The payload of a token granting more, with the valid token's signature.
        let more = edge.token("payments", "client-a", READ_WRITE);
        let parts: Vec<&str> = valid.split('.').collect();
        let other: Vec<&str> = more.split('.').collect();
        format!("{}.{}.{}", parts[0], other[1], parts[2])
    };
    for (what, token) in [
        ("wrong audience", wrong_audience),
        ("expired", expired),
        ("tampered", tampered),
        ("not a JWT", "not-a-jwt".to_owned()),
    ] {
        let res = answer(edge.get(path, Some(&token))).await;
        assert_edge_problem(what, &res, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(
            header(&res.1, "www-authenticate"),
            r#"Bearer realm="lisasports", error="invalid_token""#,
            "{what}"
        );
    }

    // A valid token without the route's scope: 403 naming the scope.
    let write_only = edge.token("payments", "client-a", &["payments:write"]);
    let res = answer(edge.get(path, Some(&write_only))).await;
    assert_edge_problem(
        "missing scope",
        &res,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );
    assert_eq!(
        header(&res.1, "www-authenticate"),
        r#"Bearer error="insufficient_scope", scope="payments:read""#
    );
    let res = answer(
        edge.http
            .post(edge.gateway.url("/payments/v1/payments"))
            .bearer_auth(&valid)
            .json(&json!({ "amount": 1, "currency": "EUR", "customer_reference": "x" })),
    )
    .await;
    assert_edge_problem(
        "read token writing",
        &res,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    );

    // Dapr-facing routes, probes, metrics and the sidecar's own API are not
    // public, whatever the token.
    let all = edge.token("payments", "client-a", READ_WRITE);
    for path in [
        "/payments/events/payments",
        "/payments/jobs/reconcile",
        "/payments/metrics",
        "/payments/dapr/subscribe",
        "/payments/v1.0/invoke/auth/method/admin/keys",
        "/payments/v1.0/state/payments-state/x",
        "/payments/v1/../events/payments",
        "/nowhere/v1/payments",
    ] {
        let res = answer(
            edge.http
                .post(edge.gateway.url(path))
                .bearer_auth(&all)
                .body("{}"),
        )
        .await;
        assert_edge_problem(path, &res, StatusCode::NOT_FOUND, "not_found");
    }

    // A 2 MiB body: 413 before it reaches anything.
    let res = answer(
        edge.http
            .post(edge.gateway.url("/payments/v1/payments"))
            .bearer_auth(&all)
            .header("content-type", "application/json")
            .body(vec![b' '; 2 * 1024 * 1024]),
    )
    .await;
    assert_edge_problem(
        "2 MiB body",
        &res,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    );
}

#[tokio::test]
async fn the_services_keep_validating_tokens_behind_the_gateway() {
    let edge = edge(1000, |_| {}).await;
    // Straight to payments (as a process inside the boundary could): the
    // service refuses on its own, with its own problem+json.
    let direct = edge.payments.app.url("/v1/payments/pay_any");
    let (status, headers, body) = answer(edge.http.get(&direct)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(header(&headers, "www-authenticate").starts_with("Bearer"));
    let wrong_audience = edge.token("bookkeeping", "client-a", READ);
    let (status, _, body) = answer(edge.http.get(&direct).bearer_auth(&wrong_audience)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let write_only = edge.token("payments", "client-a", &["payments:write"]);
    let (status, _, body) = answer(edge.http.get(&direct).bearer_auth(&write_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn a_token_of_a_rotated_out_key_is_refused_once_the_gateway_has_reread_the_jwks() {
    // Key 0 (old) and key 1 (new) both published, as during a rotation.
    let mut edge = edge(1000, |issuer| {
        issuer.add_key().map(drop).unwrap_or_default();
    })
    .await;
    let old = edge.issuer.token(0, "payments", "client-a", READ, 300);
    let new = edge.issuer.token(1, "payments", "client-a", READ, 300);
    let path = "/payments/v1/payments/pay_any";
    for (what, token) in [("old key", &old), ("new key", &new)] {
        let (status, _, body) = answer(edge.get(path, Some(token))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
        assert_eq!(body["code"], "payment_not_found", "{what}");
    }

    // The old key leaves the JWKS. bearer re-reads it on a 15-minute tick
    // (ADR 0025); the documented step after removing a key is a rolling
    // restart of the gateway replicas, which is what happens here.
    edge.issuer.unpublish(0).unwrap_or_default();
    edge.gateway
        .restart_daprds()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let res = answer(edge.get(path, Some(&old))).await;
    assert_edge_problem(
        "rotated-out key",
        &res,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let (status, _, body) = answer(edge.get(path, Some(&new))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "new key after the restart: {body}"
    );
    assert_eq!(body["code"], "payment_not_found");
}

#[tokio::test]
async fn n_plus_one_requests_in_a_second_are_429_and_other_clients_are_unaffected() {
    const LIMIT: u32 = 3;
    let edge = edge(LIMIT, |_| {}).await;
    let path = "/payments/v1/payments/pay_any";
    let flooder = edge.token("payments", "flooder", READ);
    let calm = edge.token("payments", "calm", READ);

    // LIMIT + 1 requests at once from one client: the bucket holds LIMIT.
    let burst = join_all((0..=LIMIT).map(|_| answer(edge.get(path, Some(&flooder))))).await;
    let limited: Vec<_> = burst
        .iter()
        .filter(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(
        !limited.is_empty(),
        "{} requests in a burst, none limited: {:?}",
        LIMIT + 1,
        burst.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let res = limited[0];
    assert_edge_problem(
        "over the limit",
        res,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    );
    assert_eq!(header(&res.1, "retry-after"), "1");

    // The flooder keeps flooding; a well-behaved client on the same route
    // in the same second gets every answer from the service.
    let (flood, calm_answers) = tokio::join!(
        join_all((0..30).map(|_| answer(edge.get(path, Some(&flooder))))),
        async {
            let mut out = Vec::new();
            for _ in 0..LIMIT {
                out.push(answer(edge.get(path, Some(&calm))).await);
            }
            out
        }
    );
    assert!(
        flood
            .iter()
            .any(|(s, _, _)| *s == StatusCode::TOO_MANY_REQUESTS),
        "the flood was never limited"
    );
    for (status, _, body) in &calm_answers {
        assert_eq!(*status, StatusCode::NOT_FOUND, "the calm client: {body}");
        assert_eq!(body["code"], "payment_not_found");
    }
}
