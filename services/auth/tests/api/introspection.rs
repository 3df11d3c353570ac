//! RFC 7662 introspection and RFC 7009 revocation semantics.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient};

#[tokio::test]
async fn introspection_needs_an_authenticated_client_and_says_exactly_active_false_otherwise() {
    // Long enough that the first sweep surely runs before the token
    // expires, even on a loaded machine (1 s was not: CI once swept it).
    const TTL_SECS: u64 = 3;
    let app = TestApp::spawn_with(|s| s.oauth.access_token_ttl_secs = TTL_SECS as _).await;
    let rs = app.resource_server().await;
    let token = app.client_token(&rs, "payments:read").await;

    let res = app
        .post_form("/oauth2/introspect", None, &[("token", &token)])
        .await;
    assert_eq!(res.status(), 401);
    let wrong = TestClient {
        id: rs.id.clone(),
        secret: Some("wrong".into()),
    };
    let res = app
        .post_form(
            "/oauth2/introspect",
            Some((&wrong.id, "wrong")),
            &[("token", &token)],
        )
        .await;
    assert_eq!(res.status(), 401);

    let active = app.introspect(&rs, &token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "resource");
    assert_eq!(active["scope"], "payments:read");

    assert_eq!(
        app.introspect(&rs, "unknown-token").await,
        json!({ "active": false })
    );
    let mut tampered = token.clone();
    tampered.push('A');
    assert_eq!(
        app.introspect(&rs, &tampered).await,
        json!({ "active": false })
    );

    tokio::time::sleep(std::time::Duration::from_millis(TTL_SECS * 1000 + 1100)).await;
    assert_eq!(
        app.introspect(&rs, &token).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn a_revoked_access_token_is_inactive_and_unknown_tokens_revoke_with_200() {
    let app = TestApp::spawn().await;
    let rs = app.resource_server().await;
    let other = app
        .service_client("other", "payments", &["payments:read"])
        .await;
    let token = app.client_token(&rs, "payments:read").await;

    assert_eq!(app.revoke(&rs, "never-issued").await, 200);
    // Another client cannot revoke it (200, no effect).
    assert_eq!(app.revoke(&other, &token).await, 200);
    assert_eq!(app.introspect(&other, &token).await["active"], true);

    assert_eq!(app.revoke(&rs, &token).await, 200);
    assert_eq!(
        app.introspect(&other, &token).await,
        json!({ "active": false })
    );
    // Idempotent.
    assert_eq!(app.revoke(&rs, &token).await, 200);
    let res = app
        .post_form("/oauth2/revoke", None, &[("token", &token)])
        .await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn the_sweeper_removes_only_what_can_no_longer_matter() {
    // Long enough that the first sweep surely runs before the token
    // expires, even on a loaded machine (1 s was not: CI once swept it).
    const TTL_SECS: u64 = 3;
    let app = TestApp::spawn_with(|s| s.oauth.access_token_ttl_secs = TTL_SECS as _).await;
    let rs = app.resource_server().await;
    let short = app.client_token(&rs, "payments:read").await;
    assert_eq!(app.revoke(&rs, &short).await, 200);
    let mut conn = app.db.connect().await.unwrap();
    assert_eq!(revoked_rows(&mut conn).await, 1);
    let pool = app.db.pool().await.unwrap();
    auth::jobs::sweeper::sweep(&pool).await.unwrap();
    assert_eq!(revoked_rows(&mut conn).await, 1, "still unexpired: kept");
    tokio::time::sleep(std::time::Duration::from_millis(TTL_SECS * 1000 + 1100)).await;
    auth::jobs::sweeper::sweep(&pool).await.unwrap();
    assert_eq!(revoked_rows(&mut conn).await, 0);
    pool.close().await;
}

async fn revoked_rows(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM revoked_access_tokens")
        .fetch_one(conn)
        .await
        .unwrap()
}
