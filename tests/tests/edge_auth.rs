//! The edge gateway in front of auth itself (ADR 0025): the token endpoint,
//! discovery and JWKS are public at `/auth/...`, the tokens auth issues
//! there are what the gateway's `bearer` (reading auth's JWKS) lets through
//! to payments, and the token endpoint is limited per client IP, which a
//! client cannot fake with `X-Forwarded-For`.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use platform_settings::Source;
use platform_test_support::{
    Daprd, EdgeGateway, EdgeOptions, RunningApp, TestDatabase, TestEnv, TestIssuer, free_port,
    start_with_sidecar,
};
use platform_tests::{Payments, start_payments};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

const ADMIN_SECRET: &str = "edge-test-bootstrap-admin-secret-0123456789";

struct Stack {
    gateway: EdgeGateway,
    issuer: String,
    http: reqwest::Client,
    _payments: Payments,
    _auth: (RunningApp, Daprd, TestDatabase),
    _env: TestEnv,
}

#[expect(clippy::unwrap_used, reason = "test set-up fails the test loudly")]
async fn stack(ip_rps: u32) -> Stack {
    let env = TestEnv::start().await.unwrap();
    let mut settings = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/auth/config"),
        environment: "test".into(),
    }
    .load::<auth::settings::Settings>()
    .unwrap();
    let db = TestDatabase::create_in_place(&mut settings.database)
        .await
        .unwrap();
    let port = free_port().unwrap();
    settings.server.port = port;
    let issuer = format!("http://127.0.0.1:{port}");
    settings.oauth.issuer = issuer.clone();
    settings.oauth.bootstrap_admin_secret = Some(SecretString::from(ADMIN_SECRET));
    settings.keys.publish_delay_secs = 0;
    let (auth_app, auth_daprd) = start_with_sidecar(&env, "auth", |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { auth::startup::build(settings).await.map_err(Into::into) }
    })
    .await
    .unwrap();
    let jwks_url = format!("{issuer}/oauth2/jwks");

    let unused = TestIssuer::start().await.unwrap();
    let payments = start_payments(&env, &unused, |settings, _| {
        settings.auth.issuer = issuer.clone();
        settings.auth.jwks_url = Some(jwks_url.clone());
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
            issuer: issuer.clone(),
            jwks_url,
            services: vec!["payments".into()],
            client_rps: 1000,
            ip_rps,
        },
    )
    .await
    .unwrap();
    Stack {
        gateway,
        issuer,
        http: reqwest::Client::new(),
        _payments: payments,
        _auth: (auth_app, auth_daprd, db),
        _env: env,
    }
}

#[expect(clippy::unwrap_used, reason = "a test helper")]
async fn answer(
    request: reqwest::RequestBuilder,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = request.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

impl Stack {
    /// client_credentials at the gateway's token endpoint.
    async fn token(
        &self,
        client: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        let (status, _, body) = answer(
            self.http
                .post(self.gateway.url("/auth/oauth2/token"))
                .basic_auth(client, Some(secret))
                .form(&form),
        )
        .await;
        (status, body)
    }
}

#[tokio::test]
async fn auths_public_routes_and_tokens_work_through_the_gateway() {
    let stack = stack(1000).await;

    // Discovery and JWKS, without a token.
    let (status, _, discovery) = answer(
        stack
            .http
            .get(stack.gateway.url("/auth/.well-known/openid-configuration")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{discovery}");
    assert_eq!(discovery["issuer"], stack.issuer.as_str());
    let (status, _, jwks) = answer(stack.http.get(stack.gateway.url("/auth/oauth2/jwks"))).await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    assert!(
        !jwks["keys"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .is_empty(),
        "{jwks}"
    );

    // The bootstrap admin's token (audience auth) creates a payments client
    // through the gateway; auth checks the admin token itself.
    let (status, admin) = stack.token("platform-admin", ADMIN_SECRET, &[]).await;
    assert_eq!(status, StatusCode::OK, "{admin}");
    let admin_token = admin["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, _, created) = answer(
        stack
            .http
            .post(stack.gateway.url("/auth/admin/clients"))
            .bearer_auth(&admin_token)
            .json(&json!({
                "client_id": "shop-backend", "name": "Shop backend",
                "grant_types": ["client_credentials"],
                "allowed_scopes": ["payments:read"], "allowed_audiences": ["payments"],
            })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["client_secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Its token passes the edge and payments answers itself.
    let (status, issued) = stack.token("shop-backend", &secret, &[]).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let token = issued["access_token"].as_str().unwrap_or_default();
    let (status, _, body) = answer(
        stack
            .http
            .get(stack.gateway.url("/payments/v1/payments/pay_any"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{body}\n{}",
        stack.gateway.logs(20)
    );
    assert_eq!(body["code"], "payment_not_found");

    // The admin token is for auth, not payments: refused at the edge.
    let (status, _, body) = answer(
        stack
            .http
            .get(stack.gateway.url("/payments/v1/payments/pay_any"))
            .bearer_auth(&admin_token),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "unauthorized");

    // auth's own endpoints that are not public (metrics, probes) are not reachable.
    let (status, _, body) = answer(stack.http.get(stack.gateway.url("/auth/metrics"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn the_token_endpoint_is_limited_per_ip_whatever_x_forwarded_for_says() {
    const LIMIT: u32 = 3;
    let stack = stack(LIMIT).await;
    // LIMIT + 2 attempts at once, each claiming another client address.
    let attempts = join_all((0..LIMIT + 2).map(|i| {
        answer(
            stack
                .http
                .post(stack.gateway.url("/auth/oauth2/token"))
                .header("X-Forwarded-For", format!("203.0.113.{i}"))
                .header("X-Real-IP", format!("198.51.100.{i}"))
                .basic_auth("nobody", Some("wrong"))
                .form(&[("grant_type", "client_credentials")]),
        )
    }))
    .await;
    let statuses: Vec<_> = attempts.iter().map(|a| a.0).collect();
    let limited = attempts
        .iter()
        .find(|a| a.0 == StatusCode::TOO_MANY_REQUESTS)
        .unwrap_or_else(|| panic!("no attempt was limited: {statuses:?}"));
    assert_eq!(
        limited.1.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert_eq!(limited.2["code"], "rate_limited");
    assert_eq!(
        limited.1.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // The others reached auth, which refused the credentials itself.
    assert!(
        statuses.contains(&StatusCode::UNAUTHORIZED),
        "no attempt reached auth: {statuses:?}"
    );
}
