//! Between sidecars (issue #11 §2–3), with real services and real sidecars
//! talking mTLS through sentry:
//! * service invocation is allowed exactly where each callee's
//!   `accessControl` (dapr-config/local/<app>.yaml) says, for every pair of
//!   app ids, and refused with 403 by the callee's sidecar elsewhere; a
//!   sidecar without mTLS reaches nobody;
//! * the sidecar API refuses a client without `DAPR_API_TOKEN` (401);
//! * pub/sub: auth cannot publish to `payments`, nor may bookkeeping or
//!   communication; only payments may.

use platform_test_support::{Daprd, DaprdOptions, TestEnv, TestIssuer, topics_published_by};
use platform_tests::start_platform;
use reqwest::Method;
use serde_json::json;

/// The callers: every service plus the edge gateway (issue #11 §1).
const CALLERS: [&str; 5] = [
    "auth",
    "payments",
    "bookkeeping",
    "communication",
    "gateway",
];

/// (callee, method, operation, callers allowed): the rule the issue states
/// (any service → auth's JWKS and discovery; the gateway → each service's
/// public `/v1/**` and auth's token and discovery endpoints; nothing else).
fn matrix() -> Vec<(&'static str, Method, &'static str, Vec<&'static str>)> {
    let services = vec!["payments", "bookkeeping", "communication", "gateway"];
    vec![
        ("auth", Method::GET, "oauth2/jwks", services.clone()),
        (
            "auth",
            Method::GET,
            ".well-known/openid-configuration",
            services,
        ),
        ("auth", Method::POST, "oauth2/token", vec!["gateway"]),
        ("auth", Method::POST, "v1/users", vec!["gateway"]),
        ("auth", Method::GET, "admin/clients/x", vec!["gateway"]),
        ("auth", Method::GET, "oauth2/token", vec![]),
        ("auth", Method::POST, "admin/keys/rotate", vec!["gateway"]),
        (
            "payments",
            Method::GET,
            "v1/payments/pay_x",
            vec!["gateway"],
        ),
        ("payments", Method::POST, "v1/payments", vec!["gateway"]),
        (
            "payments",
            Method::POST,
            "v1/payments/pay_x/capture",
            vec!["gateway"],
        ),
        ("payments", Method::DELETE, "v1/payments/pay_x", vec![]),
        ("payments", Method::POST, "payments-reconcile", vec![]),
        ("bookkeeping", Method::GET, "v1/accounts/x", vec!["gateway"]),
        ("bookkeeping", Method::DELETE, "v1/accounts/x", vec![]),
        ("bookkeeping", Method::POST, "events/payments", vec![]),
        ("bookkeeping", Method::POST, "jobs/statements", vec![]),
        (
            "communication",
            Method::GET,
            "v1/notifications/x",
            vec!["gateway"],
        ),
        (
            "communication",
            Method::PUT,
            "v1/recipients/x",
            vec!["gateway"],
        ),
        ("communication", Method::POST, "events/payments", vec![]),
        ("communication", Method::POST, "jobs/send", vec![]),
    ]
}

/// A sidecar without an app and without components, as `app_id`.
async fn bare_sidecar(env: &TestEnv, app_id: &str, mtls: bool) -> anyhow::Result<Daprd> {
    let empty = env.dir().join(format!("no-components-{app_id}"));
    std::fs::create_dir_all(&empty)?;
    let mut options = DaprdOptions::new(app_id)?;
    options.only_resources = Some(vec![empty]);
    options.mtls = mtls;
    Daprd::start_without_app(env, options).await
}

async fn invoke(
    caller: &Daprd,
    callee: &str,
    method: &Method,
    operation: &str,
) -> anyhow::Result<(u16, String)> {
    let res = caller
        .api_client()
        .request(
            method.clone(),
            format!(
                "{}/v1.0/invoke/{callee}/method/{operation}",
                caller.http_base()
            ),
        )
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    Ok((res.status().as_u16(), res.text().await.unwrap_or_default()))
}

#[tokio::test]
async fn invocation_is_allowed_exactly_where_access_control_says() {
    let env = TestEnv::start().await.unwrap();
    let issuer = TestIssuer::start().await.unwrap();
    let platform = start_platform(&env, &issuer).await.unwrap();
    let gateway = bare_sidecar(&env, "gateway", true).await.unwrap();
    let caller = |id: &str| -> &Daprd {
        match id {
            "auth" => &platform.auth.daprd,
            "payments" => &platform.payments.daprd,
            "bookkeeping" => &platform.bookkeeping.daprd,
            "communication" => &platform.communication.daprd,
            _ => &gateway,
        }
    };

    let mut wrong = Vec::new();
    for (callee, method, operation, allowed) in matrix() {
        for from in CALLERS.into_iter().filter(|c| *c != callee) {
            let (status, body) = invoke(caller(from), callee, &method, operation)
                .await
                .unwrap();
            let denied = status == 403 && body.contains("access control policy has denied");
            let expected_allowed = allowed.contains(&from);
            // Allowed: the callee's app answered (its own status, never a
            // refusal by the sidecar nor a failed call).
            let ok = if expected_allowed {
                !denied && status < 500
            } else {
                denied
            };
            if !ok {
                wrong.push(format!(
                    "{from} -> {callee} {method} /{operation}: expected {}, got {status} {}",
                    if expected_allowed {
                        "allowed"
                    } else {
                        "403 from the sidecar"
                    },
                    body.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // An allowed call reaches the real app: auth's JWKS with its keys.
    let (status, body) = invoke(
        &platform.payments.daprd,
        "auth",
        &Method::GET,
        "oauth2/jwks",
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"keys\""), "{body}");

    // A sidecar without mTLS cannot even reach auth's public keys.
    let intruder = bare_sidecar(&env, "intruder", false).await.unwrap();
    let (status, body) = invoke(&intruder, "auth", &Method::GET, "oauth2/jwks")
        .await
        .unwrap();
    assert!(status >= 400, "a sidecar without mTLS got {status} {body}");
    assert!(!body.contains("\"keys\""), "{body}");
}

#[tokio::test]
async fn the_sidecar_api_refuses_clients_without_its_token_and_pubsub_refuses_foreign_topics() {
    let env = TestEnv::start().await.unwrap();
    let issuer = TestIssuer::start().await.unwrap();
    let platform = start_platform(&env, &issuer).await.unwrap();
    let sidecars = [
        &platform.auth.daprd,
        &platform.payments.daprd,
        &platform.bookkeeping.daprd,
        &platform.communication.daprd,
    ];
    let anonymous = reqwest::Client::new();
    let event = json!({"specversion": "1.0", "id": "evt_x", "source": "x", "type": "payments.payment.succeeded",
        "datacontenttype": "application/json", "data": {}});

    // The API without DAPR_API_TOKEN, or with another sidecar's: 401.
    for daprd in sidecars {
        let base = daprd.http_base();
        let calls = [
            (Method::GET, format!("{base}/v1.0/metadata")),
            (Method::POST, format!("{base}/v1.0/publish/pubsub/payments")),
            (
                Method::GET,
                format!("{base}/v1.0/invoke/auth/method/oauth2/jwks"),
            ),
            (Method::GET, format!("{base}/v1.0/state/payments-state/k")),
            (Method::POST, format!("{base}/v1.0/healthz")),
        ];
        for (method, url) in calls {
            for token in [None, Some(platform.auth.daprd.options.api_token.as_str())] {
                if daprd.app_id() == "auth" && token.is_some() {
                    continue;
                }
                let mut req = anonymous.request(method.clone(), &url).json(&event);
                if let Some(token) = token {
                    req = req.header("dapr-api-token", token);
                }
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                assert_eq!(
                    status,
                    401,
                    "{} {method} {url} with {token:?}: {body}",
                    daprd.app_id()
                );
            }
        }
        // Health stays open to probes without a token (GET only).
        let health = anonymous
            .get(format!("{base}/v1.0/healthz"))
            .send()
            .await
            .unwrap();
        assert!(health.status().is_success(), "{}", health.status());
        // With its own token the API answers.
        let metadata = daprd
            .api_client()
            .get(format!("{base}/v1.0/metadata"))
            .send()
            .await
            .unwrap();
        assert_eq!(metadata.status(), 200, "{}", daprd.app_id());
    }

    // Pub/sub, with each sidecar's own token: only payments may publish to
    // `payments`. auth's sidecar does not even load the component.
    let publish = |daprd: &Daprd| {
        daprd
            .api_client()
            .post(format!(
                "{}/v1.0/publish/pubsub/payments",
                daprd.http_base()
            ))
            .header("content-type", "application/cloudevents+json")
            .json(&event)
            .send()
    };
    let auth = publish(&platform.auth.daprd).await.unwrap();
    let (status, body) = (auth.status().as_u16(), auth.text().await.unwrap());
    assert!(
        status == 403 || status == 404,
        "auth publishing to payments: {status} {body}"
    );
    assert!(body.contains("ERR_PUBSUB"), "{body}");
    for daprd in [&platform.bookkeeping.daprd, &platform.communication.daprd] {
        let res = publish(daprd).await.unwrap();
        let (status, body) = (res.status().as_u16(), res.text().await.unwrap());
        assert_eq!(
            status,
            403,
            "{} publishing to payments: {body}",
            daprd.app_id()
        );
        assert!(body.contains("ERR_PUBSUB_FORBIDDEN"), "{body}");
    }
    assert!(
        topics_published_by("payments")
            .unwrap()
            .contains(&"payments".to_owned())
    );
    let own = publish(&platform.payments.daprd).await.unwrap();
    assert!(
        own.status().is_success(),
        "payments publishing to payments: {}",
        own.status()
    );
}
