//! Every route says who may call it: without a token 401, with a token
//! lacking the route's scope 403, and nothing changes.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, World};

#[tokio::test]
async fn every_route_refuses_a_missing_token_and_a_missing_scope() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(5).await;
    let offering_id = offering["id"].as_str().unwrap();
    let id = uuid::Uuid::now_v7();
    let routes: Vec<(Method, String, &str)> = vec![
        (Method::POST, "/v1/offerings".into(), "bookings:admin"),
        (
            Method::PUT,
            format!("/v1/offerings/{offering_id}"),
            "bookings:admin",
        ),
        (
            Method::POST,
            format!("/v1/offerings/{offering_id}/cancel"),
            "bookings:admin",
        ),
        (Method::GET, "/v1/offerings".into(), "bookings:read"),
        (
            Method::GET,
            format!("/v1/offerings/{offering_id}"),
            "bookings:read",
        ),
        (Method::GET, format!("/v1/bookings/{id}"), "bookings:read"),
        (Method::POST, "/v1/bookings".into(), "bookings:write"),
        (
            Method::POST,
            format!("/v1/bookings/{id}/cancel"),
            "bookings:write",
        ),
        (
            Method::POST,
            format!("/v1/bookings/{id}/pay"),
            "bookings:write",
        ),
    ];
    let anonymous = reqwest::Client::new();
    for (method, path, scope) in &routes {
        let res = anonymous
            .request(method.clone(), app.app.url(path))
            .header("Idempotency-Key", "k")
            .json(&json!({ "offering_id": offering_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        // A token with every scope but the one the route needs.
        let others: Vec<&str> = crate::helpers::ALL_SCOPES
            .into_iter()
            .filter(|s| s != scope)
            .collect();
        let client =
            platform_test_support::authorized_client(&world.issuer.token("bookings", &others))
                .unwrap();
        let res = client
            .request(method.clone(), app.app.url(path))
            .header("Idempotency-Key", "k")
            .json(&json!({ "offering_id": offering_id }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path} without {scope}");
        // A token for another service is refused too.
        let client = platform_test_support::authorized_client(
            &world.issuer.token("payments", &crate::helpers::ALL_SCOPES),
        )
        .unwrap();
        let res = client
            .request(method.clone(), app.app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} with another audience");
    }
    // The routes only its sidecar calls refuse anyone without the app token
    // (platform_server::app_token), a forged payment success included.
    for (method, path) in [
        (Method::POST, "/events/payments".to_owned()),
        (Method::POST, "/events/bookings".to_owned()),
        (Method::POST, format!("/job/booking-hold-{id}")),
        (Method::GET, "/dapr/subscribe".to_owned()),
    ] {
        let res = anonymous
            .request(method.clone(), app.app.url(&path))
            .header("content-type", "application/cloudevents+json")
            .json(&json!({
                "specversion": "1.0", "id": "forged", "source": "payments",
                "type": "payments.payment.succeeded", "data": { "payment_id": "pay_x" },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{method} {path} without the app token");
    }
    // Nothing was booked, changed or cancelled by the refused calls.
    assert_eq!(app.taken(offering_id).await, 0);
    let status: String = sqlx::query_scalar("SELECT status FROM offerings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(status, "open");
    let bookings: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(bookings, 0);
}
