//! The code + PKCE flow with an independent OIDC client, code reuse, and
//! refresh rotation with reuse detection.

use openidconnect::core::{
    CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, TestClient, location_param, pkce};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn oidc_http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Walks the authorization URL the library built: GET shows the form, POST
/// signs in, the redirect carries the code.
async fn sign_in(app: &TestApp, authorize_url: &url::Url, password: &str) -> reqwest::Response {
    let page = app.http.get(authorize_url.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let params: Vec<(String, String)> = authorize_url.query_pairs().into_owned().collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.login_for_code(&params, "alice", password).await
}

#[tokio::test]
async fn the_full_code_flow_with_pkce_gives_verified_id_and_access_tokens_and_rotating_refresh() {
    let app = TestApp::spawn().await;
    let alice = app.register_shop_and_alice().await;

    let http = oidc_http();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new("shop".into()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("payments:read".into()))
        .add_scope(Scope::new("payments:write".into()))
        .set_pkce_challenge(challenge)
        .url();

    // A wrong password shows the form again with a generic message.
    let res = sign_in(&app, &url, "wrong password!!").await;
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Invalid username or password.")
    );

    let res = sign_in(&app, &url, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location_param(&res, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        location_param(&res, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
    let code = location_param(&res, "code").unwrap();

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an id_token for scope openid");
    let verifier = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let id_claims = id_token
        .claims(&verifier, &nonce)
        .expect("ID token verifies");
    assert_eq!(id_claims.subject().as_str(), alice);

    // Granted = asked ∩ the user's roles: payments:write is not hers.
    let access = tokens.access_token().secret();
    let claims = app.decode_access_token(access, "payments").await.unwrap();
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["client_id"], "shop");
    let scopes: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"payments:read") && !scopes.contains(&"payments:write"),
        "{claims}"
    );

    // Refresh: a new pair each time.
    let first_refresh = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let second_refresh = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());
    let new_access = refreshed.access_token().secret().clone();
    assert!(
        app.decode_access_token(&new_access, "payments")
            .await
            .is_ok()
    );

    // Reusing the rotated token: refused, and the whole family is revoked.
    let reuse = client
        .exchange_refresh_token(&first_refresh)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(reuse.is_err(), "reuse must fail");
    let resource = app.resource_server().await;
    assert_eq!(
        app.introspect(&resource, second_refresh.secret()).await,
        json!({ "active": false })
    );
    assert_eq!(
        app.introspect(&resource, &new_access).await,
        json!({ "active": false })
    );
    assert_eq!(
        app.introspect(&resource, access).await,
        json!({ "active": false })
    );
    let (status, body) = refresh(&app, second_refresh.secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

/// What the code-flow tests ask for unless they say otherwise.
const READ: &str = "openid payments:read";

async fn code_for(app: &TestApp, client_id: &str, challenge: &str) -> String {
    code_with_scope(app, client_id, challenge, READ).await
}

async fn code_with_scope(app: &TestApp, client_id: &str, challenge: &str, scope: &str) -> String {
    let params = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "s1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let res = app.login_for_code(&params, "alice", PASSWORD).await;
    assert_eq!(res.status(), 303);
    location_param(&res, "code").expect("code")
}

async fn redeem(app: &TestApp, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
    redeem_as(app, "shop", code, verifier, redirect).await
}

/// Redeems `code` at the token endpoint as the public client `client_id`.
async fn redeem_as(
    app: &TestApp,
    client_id: &str,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (u16, Value) {
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", client_id),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
        .await;
    (res.status().as_u16(), res.json().await.unwrap())
}

/// What alice got by signing in to shop for `scope` and redeeming her code.
struct Redeemed {
    code: String,
    verifier: String,
    tokens: Value,
}

/// Alice signs in to shop asking for `scope` and redeems her code, which
/// must succeed.
async fn alice_redeems_a_code(app: &TestApp, scope: &str) -> Redeemed {
    let (verifier, challenge) = pkce();
    let code = code_with_scope(app, "shop", &challenge, scope).await;
    let (status, tokens) = redeem(app, &code, &verifier, REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    Redeemed {
        code,
        verifier,
        tokens,
    }
}

#[tokio::test]
async fn a_code_redeemed_twice_revokes_what_the_first_redemption_issued() {
    let app = TestApp::spawn().await;
    app.register_shop_and_alice().await;
    let Redeemed {
        code,
        verifier,
        tokens: first,
    } = alice_redeems_a_code(&app, READ).await;
    let resource = app.resource_server().await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(&resource, access).await["active"], true);

    let (status, second) = redeem(&app, &code, &verifier, REDIRECT).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        app.introspect(&resource, access).await,
        json!({ "active": false })
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.introspect(&resource, refresh).await,
        json!({ "active": false })
    );
}

#[tokio::test]
async fn codes_are_bound_to_the_verifier_and_redirect_uri_and_pkce_is_mandatory() {
    let app = TestApp::spawn().await;
    app.register_shop_and_alice().await;

    let (verifier, challenge) = pkce();
    let code = code_for(&app, "shop", &challenge).await;
    let (other_verifier, _) = pkce();
    let (status, body) = redeem(&app, &code, &other_verifier, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The failed attempt spent the code.
    let (status, _) = redeem(&app, &code, &verifier, REDIRECT).await;
    assert_eq!(status, 400);

    let code = code_for(&app, "shop", &challenge).await;
    let (status, body) = redeem(&app, &code, &verifier, "http://127.0.0.1:9/other").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let code = code_for(&app, "shop", &challenge).await;
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "shop"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // plain, missing method, missing challenge: back to the client with invalid_request.
    for (method, chal) in [
        (Some("plain"), verifier.as_str()),
        (None, challenge.as_str()),
        (Some("S256"), ""),
    ] {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "shop"),
            ("redirect_uri", REDIRECT),
            ("scope", "payments:read"),
            ("state", "s2"),
            ("code_challenge", chal),
        ];
        if let Some(m) = method {
            params.push(("code_challenge_method", m));
        }
        let url = reqwest::Url::parse_with_params(&app.url("/oauth2/authorize"), &params).unwrap();
        let res = app.http.get(url).send().await.unwrap();
        assert_eq!(res.status(), 303, "{method:?}");
        assert_eq!(
            location_param(&res, "error").as_deref(),
            Some("invalid_request")
        );
        assert_eq!(location_param(&res, "state").as_deref(), Some("s2"));
    }

    // An unregistered redirect URI is never redirected to.
    let url = reqwest::Url::parse_with_params(
        &app.url("/oauth2/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", "shop"),
            ("redirect_uri", "https://evil.example/cb"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn a_code_expires() {
    let app = TestApp::spawn_with(|s| s.oauth.code_ttl_secs = 1).await;
    app.register_shop_and_alice().await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, "shop", &challenge).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, body) = redeem(&app, &code, &verifier, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_deactivates_the_access_tokens_issued_from_it() {
    let app = TestApp::spawn().await;
    app.register_shop_and_alice().await;
    let tokens = alice_redeems_a_code(&app, READ).await.tokens;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let resource = app.resource_server().await;
    assert_eq!(app.introspect(&resource, refresh).await["active"], true);

    let shop = TestClient {
        id: "shop".into(),
        secret: None,
    };
    assert_eq!(app.revoke(&shop, refresh).await, 200);
    assert_eq!(
        app.introspect(&resource, refresh).await,
        json!({ "active": false })
    );
    assert_eq!(
        app.introspect(&resource, access).await,
        json!({ "active": false })
    );
}

async fn refresh(app: &TestApp, token: &str) -> (u16, Value) {
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "shop"),
            ],
        )
        .await;
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn within_the_grace_only_the_latest_rotated_token_may_be_retried() {
    let app = TestApp::spawn_with(|s| s.oauth.refresh_reuse_grace_secs = 30).await;
    app.register_shop_and_alice().await;
    let tokens = alice_redeems_a_code(&app, READ).await.tokens;
    let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();

    let (status, second) = refresh(&app, &r1).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    let (status, third) = refresh(&app, &r2).await;
    assert_eq!(status, 200, "{third}");
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();

    // The client lost the answer to its last refresh and retries with r2:
    // within the grace it gets a fresh pair, and r3 is retired.
    let (status, retried) = refresh(&app, &r2).await;
    assert_eq!(status, 200, "{retried}");
    let r4 = retried["refresh_token"].as_str().unwrap().to_owned();
    let resource = app.resource_server().await;
    assert_eq!(
        app.introspect(&resource, &r3).await,
        json!({ "active": false })
    );
    assert_eq!(app.introspect(&resource, &r4).await["active"], true);

    // r1 is older than the latest rotation: theft, the family is revoked.
    let (status, body) = refresh(&app, &r1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        app.introspect(&resource, &r4).await,
        json!({ "active": false })
    );
    let (status, _) = refresh(&app, &r4).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn another_client_replaying_a_used_code_revokes_nothing() {
    let app = TestApp::spawn().await;
    app.register_shop_and_alice().await;
    app.web_client("intruder", false).await;
    let Redeemed {
        code,
        verifier,
        tokens: first,
    } = alice_redeems_a_code(&app, READ).await;
    let resource = app.resource_server().await;
    let access = first["access_token"].as_str().unwrap();

    // A client that got hold of the used code replays it.
    let (status, body) = redeem_as(&app, "intruder", &code, &verifier, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The legitimate client's tokens are untouched.
    assert_eq!(app.introspect(&resource, access).await["active"], true);
}

#[tokio::test]
async fn a_refresh_narrows_to_the_current_roles_and_ends_when_none_remain() {
    let app = TestApp::spawn().await;
    app.web_client("shop", false).await;
    let alice = app.user("alice", &["payments-operator"]).await;
    let set_roles = |roles: Value| {
        let app = &app;
        let path = format!("/admin/users/{alice}/roles");
        async move {
            let (status, body) = app
                .admin_call(reqwest::Method::PUT, &path, Some(json!({ "roles": roles })))
                .await;
            assert_eq!(status, 204, "{body}");
        }
    };
    let tokens = alice_redeems_a_code(&app, "openid payments:read payments:write")
        .await
        .tokens;
    assert_eq!(tokens["scope"], "openid payments:read payments:write");

    // Demoted to reader: the next refresh carries only what the role allows.
    set_roles(json!(["payments-reader"])).await;
    let (status, narrowed) = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid payments:read");
    let access = narrowed["access_token"].as_str().unwrap();
    let claims = app.decode_access_token(access, "payments").await.unwrap();
    assert_eq!(claims["scope"], "openid payments:read");
    // Asking for the lost scope back is refused.
    let res = app
        .post_form(
            "/oauth2/token",
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", narrowed["refresh_token"].as_str().unwrap()),
                ("client_id", "shop"),
                ("scope", "payments:write"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_scope");

    // No role left: the grant is over, and so are its tokens.
    let (status, again) = refresh(&app, narrowed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{again}");
    set_roles(json!([])).await;
    let (status, body) = refresh(&app, again["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let resource = app.resource_server().await;
    assert_eq!(
        app.introspect(&resource, again["access_token"].as_str().unwrap())
            .await,
        json!({ "active": false })
    );
}
