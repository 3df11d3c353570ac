//! Hostile tokens against the running server's protected API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{TestApp, www_authenticate};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn forged_and_altered_admin_tokens_are_refused() {
    let app = TestApp::spawn_with(|s| s.oauth.access_token_ttl_secs = 2).await;
    let good = app.admin_token().await;
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();

    let mut cases: Vec<(&str, String)> = Vec::new();
    cases.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid })),
            parts[1]
        ),
    ));
    // HS256 keyed with the published public key (as JWK JSON).
    let jwks = app.get("/oauth2/jwks").await.text().await.unwrap();
    let jwks: Value = serde_json::from_str(&jwks).unwrap();
    let public = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    let input = format!(
        "{}.{}",
        b64(&json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid })),
        parts[1]
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        input.as_bytes(),
    );
    cases.push((
        "HS256 with the public key",
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())),
    ));
    let mut elevated = claims.clone();
    elevated["scope"] = json!("auth:admin payments:write");
    cases.push((
        "tampered payload",
        format!("{}.{}.{}", parts[0], b64(&elevated), parts[2]),
    ));
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[0] ^= 0x80;
    cases.push((
        "tampered signature",
        format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig)),
    ));
    cases.push(("garbage", "not.a.token".into()));

    for (name, token) in &cases {
        let res = app.list_roles(token).await;
        assert_eq!(res.status(), 401, "{name}");
        assert!(www_authenticate(&res).contains("invalid_token"), "{name}");
    }
    // The untouched token passes...
    let res = app.list_roles(&good).await;
    assert_eq!(res.status(), 200);
    // ...until it expires (2 s lifetime, 5 s leeway).
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let res = app.list_roles(&good).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        "the token has expired"
    );
}
