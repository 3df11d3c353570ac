//! The admin API is protected by the shared crate's RequireScope, and the
//! seed data registers the platform's services.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, www_authenticate};

#[tokio::test]
async fn the_admin_api_needs_an_auth_admin_token() {
    let app = TestApp::spawn().await;

    let res = app.get("/admin/roles").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"auth\"");
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    // A valid token for another audience is not an admin token...
    let service = app
        .service_client("reporting", "payments", &["payments:read"])
        .await;
    let token = app.client_token(&service, "payments:read").await;
    let res = app.list_roles(&token).await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "invalid_token");

    // ...and a token for auth without the admin scope is forbidden.
    let viewer = app
        .create_client(json!({
            "client_id": "viewer", "name": "viewer", "grant_types": ["client_credentials"],
            "allowed_scopes": ["auth:read"], "allowed_audiences": ["auth"],
        }))
        .await;
    let token = app.client_token(&viewer, "auth:read").await;
    let res = app.list_roles(&token).await;
    assert_eq!(res.status(), 403);
    assert!(www_authenticate(&res).contains("insufficient_scope"),);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "insufficient_scope"
    );

    let (status, roles) = app
        .admin_call(reqwest::Method::GET, "/admin/roles", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "payments-operator")
    );
}

#[tokio::test]
async fn seeded_service_clients_work_once_an_admin_issues_their_secret() {
    let app = TestApp::spawn().await;
    let (status, payments) = app
        .admin_call(reqwest::Method::GET, "/admin/clients/payments", None)
        .await;
    assert_eq!(status, 200, "{payments}");
    assert_eq!(
        payments["allowed_audiences"],
        json!(["bookkeeping", "communication"])
    );
    assert!(
        payments.get("secret_digest").is_none(),
        "digests are never served"
    );

    // No secret yet: it cannot authenticate.
    let without = TestClient {
        id: "payments".into(),
        secret: Some(String::new()),
    };
    assert_eq!(
        app.token(&without, &[("grant_type", "client_credentials")])
            .await
            .0,
        401
    );

    let (status, issued) = app
        .admin_call(
            reqwest::Method::POST,
            "/admin/clients/payments/secret",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let payments = TestClient {
        id: "payments".into(),
        secret: issued["client_secret"].as_str().map(ToOwned::to_owned),
    };
    let token = app.client_token(&payments, "bookkeeping:write").await;
    let claims = app
        .decode_access_token(&token, "bookkeeping")
        .await
        .unwrap();
    assert_eq!(claims["scope"], "bookkeeping:write");
    // payments may not read payments through a token.
    let (status, body) = app
        .token(
            &payments,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "payments:read"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn admin_input_is_validated_and_disabled_clients_cannot_authenticate() {
    let app = TestApp::spawn().await;
    for bad in [
        json!({ "client_id": "Bad Id", "name": "x", "grant_types": ["client_credentials"] }),
        json!({ "client_id": "x1", "name": "x", "grant_types": ["password"] }),
        json!({ "client_id": "x2", "name": "x", "public": true, "grant_types": ["client_credentials"] }),
        json!({ "client_id": "x3", "name": "x", "grant_types": ["authorization_code"], "redirect_uris": ["http://evil.example/cb"] }),
    ] {
        let (status, body) = app
            .admin_call(reqwest::Method::POST, "/admin/clients", Some(bad.clone()))
            .await;
        assert_eq!(status, 422, "{bad} -> {body}");
        assert_eq!(body["code"], "validation_failed");
    }
    let service = app
        .service_client("reporting", "payments", &["payments:read"])
        .await;
    let (status, _) = app
        .admin_call(
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({
            "client_id": "reporting", "name": "again", "grant_types": ["client_credentials"] })),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .admin_call(
            reqwest::Method::POST,
            "/admin/clients/reporting/disable",
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.token(&service, &[("grant_type", "client_credentials")])
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn uuid_shaped_client_ids_are_refused_so_a_sub_never_names_both_a_user_and_a_client() {
    let app = TestApp::spawn().await;
    // A user's sub is a UUID; this client id would otherwise pass the pattern.
    let user_like = format!("a{}", &uuid::Uuid::now_v7().to_string()[1..]);
    for id in [user_like.clone(), user_like.replace('-', "")] {
        let (status, body) = app
            .admin_call(
                reqwest::Method::POST,
                "/admin/clients",
                Some(json!({
                    "client_id": id, "name": "x", "grant_types": ["client_credentials"],
                    "allowed_scopes": ["payments:read"], "allowed_audiences": ["payments"],
                })),
            )
            .await;
        assert_eq!(status, 422, "{id} -> {body}");
        assert_eq!(
            (body["code"].as_str(), body["field"].as_str()),
            (Some("validation_failed"), Some("client_id"))
        );
        let (status, _) = app
            .admin_call(reqwest::Method::GET, &format!("/admin/clients/{id}"), None)
            .await;
        assert_eq!(status, 404, "nothing was stored for {id}");
    }
    // The database holds the same line for writers other than the admin API.
    let mut conn = app.db.connect().await.unwrap();
    let inserted = sqlx::query(
        "INSERT INTO clients (client_id, name, grant_types) VALUES ($1, 'x', ARRAY['client_credentials'])",
    )
    .bind(&user_like)
    .execute(&mut conn)
    .await;
    assert!(
        matches!(&inserted, Err(sqlx::Error::Database(db)) if db.is_check_violation()),
        "{inserted:?}"
    );
}

#[tokio::test]
async fn user_roles_for_an_id_that_is_not_a_uuid_are_a_404_problem() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let res = reqwest::Client::new()
        .put(app.url("/admin/users/not-a-uuid/roles"))
        .bearer_auth(&token)
        .json(&json!({ "roles": ["payments-operator"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "not_found");
}

#[tokio::test]
async fn a_role_named_twice_is_granted_once() {
    let app = TestApp::spawn().await;
    // `user` asserts the 204 (a 500 before: the second grant broke the key).
    let id = app
        .user("dora", &["payments-operator", "payments-operator"])
        .await;
    let granted = app
        .db_query_i64(
            "SELECT count(*) FROM user_roles WHERE user_id = $1::uuid",
            &id,
        )
        .await;
    assert_eq!(granted, 1);
}
