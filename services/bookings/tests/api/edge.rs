//! bookings behind the edge gateway (ADR 0025, docs/adr/0044): real Caddy
//! with `gateway/Caddyfile` and the `bookings` gateway daprd as `make up`
//! runs them (testing/support/src/gateway.rs), in front of bookings and its
//! sidecar, whose `accessControl` lets the gateway reach only the public
//! API. A token for another audience is refused at the edge; a good one
//! passes with the path and query as sent; offering administration needs
//! `bookings:admin` at the edge already.

use platform_test_support::{EdgeGateway, EdgeOptions};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ALL_SCOPES, World, offering_body};

#[expect(clippy::unwrap_used, reason = "a test helper")]
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
    let res = request.send().await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn the_edge_lets_a_bookings_token_through_and_refuses_another_audience() {
    let world = World::start().await;
    let app = crate::helpers::TestApp::spawn(&world, 900).await;
    let gateway = EdgeGateway::start(
        &world.env,
        EdgeOptions {
            issuer: world.issuer.issuer().to_owned(),
            jwks_url: world.issuer.jwks_url().to_owned(),
            services: vec!["bookings".into()],
            client_rps: 1000,
            ip_rps: 1000,
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let now = time::OffsetDateTime::now_utc();
    let admin = world
        .issuer
        .token_for("club-admin", "bookings", &ALL_SCOPES);

    // Offering administration through the edge: bookings:admin passes.
    let (status, _, created) = answer(
        http.post(gateway.url("/bookings/v1/offerings"))
            .bearer_auth(&admin)
            .json(&offering_body(12, now)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{created}\n{}",
        gateway.logs(20)
    );
    let offering_id = created["id"].as_str().unwrap().to_owned();

    // The catalogue with a read token, query as sent.
    let reader = world
        .issuer
        .token_for("member-1", "bookings", &["bookings:read"]);
    let (status, _, page) = answer(
        http.get(gateway.url("/bookings/v1/offerings?kind=course&limit=5"))
            .bearer_auth(&reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}\n{}", gateway.logs(20));
    assert!(
        page["items"]
            .as_array()
            .is_some_and(|d| d.iter().any(|o| o["id"] == offering_id.as_str())),
        "{page}"
    );

    // A good token books (bookings:write) through the edge.
    let member =
        world
            .issuer
            .token_for("member-1", "bookings", &["bookings:read", "bookings:write"]);
    let (status, _, booking) = answer(
        http.post(gateway.url("/bookings/v1/bookings"))
            .bearer_auth(&member)
            .header("Idempotency-Key", "edge-book-1")
            .json(&serde_json::json!({ "offering_id": offering_id, "locale": "de" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{booking}\n{}",
        gateway.logs(20)
    );
    assert_eq!(booking["participant"], "member-1", "{booking}");

    // Refused at the edge, as problem+json with a stable code:
    let payments_token =
        world
            .issuer
            .token_for("member-1", "payments", &["bookings:read", "bookings:write"]);
    let refusals: Vec<(&str, reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            "a token for another audience",
            http.get(gateway.url("/bookings/v1/offerings"))
                .bearer_auth(&payments_token),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "no token",
            http.get(gateway.url("/bookings/v1/offerings")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "a member creating an offering (bookings:admin needed)",
            http.post(gateway.url("/bookings/v1/offerings"))
                .bearer_auth(&member)
                .json(&offering_body(5, now)),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            "booking with a read-only token",
            http.post(gateway.url("/bookings/v1/bookings"))
                .bearer_auth(&reader)
                .header("Idempotency-Key", "edge-book-2")
                .json(&serde_json::json!({ "offering_id": offering_id })),
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            "a Dapr-facing route",
            http.post(gateway.url("/bookings/events/payments"))
                .bearer_auth(&admin)
                .body("{}"),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (what, request, expected, code) in refusals {
        let (status, content_type, body) = answer(request).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        assert_eq!(body["code"], code, "{what}: {body}");
    }
    // Nothing the refusals asked for happened: one offering, one booking.
    let offerings: i64 = sqlx::query_scalar("SELECT count(*) FROM offerings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((offerings, bookings), (1, 1));
}
