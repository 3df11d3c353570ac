//! Discovery → client credentials → the token validated against the JWKS,
//! with an independent client library; then the grant's error answers.

use std::sync::Arc;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, IssuerUrl, OAuth2TokenResponse, Scope};
use platform_auth_token::{JwksCache, JwksCacheOptions, Validator, ValidatorConfig};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, www_authenticate};

fn oidc_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn discovery_then_client_credentials_gives_an_rfc9068_token_that_validates_against_the_jwks()
{
    let app = TestApp::spawn().await;
    let service = app
        .service_client(
            "reporting",
            "payments",
            &["payments:read", "payments:write"],
        )
        .await;

    // An independent OIDC client discovers us and asks for a token.
    let http = oidc_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    assert_eq!(metadata.issuer().as_str(), app.issuer);
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(service.id.clone()),
        Some(ClientSecret::new(service.secret.clone().unwrap())),
    );
    let response = client
        .exchange_client_credentials()
        .unwrap()
        .add_scope(Scope::new("payments:read".into()))
        .request_async(&http)
        .await
        .expect("client credentials grant");
    assert!(
        response.refresh_token().is_none(),
        "no refresh token for client credentials"
    );
    let token = response.access_token().secret();

    // jsonwebtoken checks the signature against the JWKS, iss, aud, exp.
    let claims = app
        .decode_access_token(token, "payments")
        .await
        .expect("valid");
    for claim in [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
    ] {
        assert!(!claims[claim].is_null(), "{claim} missing: {claims}");
    }
    assert_eq!(claims["sub"], "reporting");
    assert_eq!(claims["client_id"], "reporting");
    assert_eq!(claims["scope"], "payments:read");
    assert!(app.decode_access_token(token, "bookkeeping").await.is_err());

    // The shared crate, fetching the JWKS over HTTP, agrees.
    let keys = JwksCache::new(app.url("/oauth2/jwks"), JwksCacheOptions::default()).unwrap();
    let validator = Validator::new(
        ValidatorConfig::new(&app.issuer, "payments"),
        Arc::new(keys),
    );
    let checked = validator.validate(token).await.expect("shared crate");
    assert!(checked.has_scope("payments:read"));
    assert!(!checked.has_scope("payments:write"));
}

#[tokio::test]
async fn scopes_stay_within_the_client_and_the_audience_follows_them() {
    let app = TestApp::spawn().await;
    let service = app
        .service_client("reporting", "payments", &["payments:read"])
        .await;

    // No scope asked: every allowed scope of the only audience.
    let (status, body) = app
        .token(&service, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "payments:read");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);

    for (form, error) in [
        (vec![("scope", "payments:write")], "invalid_scope"),
        (vec![("scope", "bookkeeping:read")], "invalid_scope"),
        (vec![("audience", "bookkeeping")], "invalid_target"),
        (
            vec![("scope", "payments:read"), ("audience", "bookkeeping")],
            "invalid_target",
        ),
        (vec![("scope", "bad\"scope")], "invalid_scope"),
    ] {
        let mut form = form;
        form.push(("grant_type", "client_credentials"));
        let (status, body) = app.token(&service, &form).await;
        assert_eq!(status, 400, "{form:?} -> {body}");
        assert_eq!(body["error"], error, "{form:?} -> {body}");
    }
}

#[tokio::test]
async fn oauth_errors_follow_rfc6749() {
    let app = TestApp::spawn().await;
    let service = app
        .service_client("reporting", "payments", &["payments:read"])
        .await;
    let wrong = TestClient {
        id: service.id.clone(),
        secret: Some("not-the-secret".into()),
    };

    let res = app
        .post_form(
            "/oauth2/token",
            Some((&wrong.id, wrong.secret.as_deref().unwrap())),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(res.status(), 401);
    assert!(www_authenticate(&res).starts_with("Basic"),);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Unknown client: the same answer as a wrong secret.
    let (status, body) = app
        .token(
            &TestClient {
                id: "nobody".into(),
                secret: Some("x".into()),
            },
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let (status, body) = app.token(&service, &[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = app.token(&service, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    let (status, body) = app
        .token(
            &service,
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );

    // Repeated parameters and a non-form body are invalid requests.
    let res = app
        .post_form(
            "/oauth2/token",
            Some((&service.id, service.secret.as_deref().unwrap())),
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let res = app
        .http
        .post(app.url("/oauth2/token"))
        .basic_auth(&service.id, service.secret.as_deref())
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // client_secret_post works too.
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &service.id),
                ("client_secret", service.secret.as_deref().unwrap()),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn client_secrets_are_stored_as_digests_and_reissuing_one_retires_the_old() {
    let app = TestApp::spawn().await;
    let service = app
        .service_client("reporting", "payments", &["payments:read"])
        .await;
    let secret = service.secret.clone().unwrap();
    assert!(secret.len() >= 43, "high-entropy secret");

    let mut conn = app.db.connect().await.unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_digest FROM clients WHERE client_id = 'reporting'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, secret.as_bytes());

    let (status, body) = app
        .admin_call(
            reqwest::Method::POST,
            "/admin/clients/reporting/secret",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let new = TestClient {
        id: service.id.clone(),
        secret: body["client_secret"].as_str().map(ToOwned::to_owned),
    };
    assert_eq!(
        app.token(&service, &[("grant_type", "client_credentials")])
            .await
            .0,
        401
    );
    assert_eq!(
        app.token(&new, &[("grant_type", "client_credentials")])
            .await
            .0,
        200
    );
}
