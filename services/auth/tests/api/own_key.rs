//! Tokens validly signed by auth's own signing key but wrong in one respect
//! (audience, `typ`, expiry) or altered after signing: refused by the shared
//! validator fed from auth's JWKS, and by auth's own protected admin routes.
//! Signing with the real key makes the signature check pass, so each case
//! reaches the check it is about; a control token, identical but for that
//! one respect, is accepted.

use std::sync::Arc;

use auth::crypto::KeyEncryptionKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth_token::{
    JwksCache, JwksCacheOptions, ValidationError, Validator, ValidatorConfig,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::helpers::{TestApp, settings, www_authenticate};

/// auth's current signing key, opened from its row as auth itself does.
struct OwnKey {
    kid: String,
    pair: EcdsaKeyPair,
}

impl OwnKey {
    async fn of(app: &TestApp) -> Self {
        let mut conn = app.db.connect().await.unwrap();
        let (kid, sealed): (String, Vec<u8>) = sqlx::query_as(
            "SELECT kid, private_key_sealed FROM signing_keys ORDER BY activate_at DESC LIMIT 1",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let kek = KeyEncryptionKey::new(&settings().keys.encryption_key_bytes().unwrap()).unwrap();
        let pkcs8 = kek.open(&sealed, &kid).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .unwrap();
        Self { kid, pair }
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn header(&self, typ: Option<&str>) -> Value {
        let mut header = json!({ "alg": "ES256", "kid": self.kid });
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        header
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of an admin token for `audience`, valid for five minutes.
fn claims(issuer: &str, audience: &str) -> Value {
    json!({
        "iss": issuer, "sub": "platform-admin", "aud": audience,
        "exp": now() + 300, "iat": now(), "jti": uuid::Uuid::now_v7().to_string(),
        "client_id": "platform-admin", "scope": "auth:admin",
    })
}

/// The cases, each with what the validator must answer.
fn cases(app: &TestApp, key: &OwnKey) -> Vec<(&'static str, String, ValidationError)> {
    let good = claims(&app.issuer, "auth");
    let mut expired = good.clone();
    expired["iat"] = json!(now() - 600);
    expired["exp"] = json!(now() - 300);
    let valid = key.sign(&key.header(Some("at+jwt")), &good);
    let parts: Vec<&str> = valid.split('.').collect();
    let mut widened = good.clone();
    widened["scope"] = json!("auth:admin payments:write");
    let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    signature[31] ^= 0x01;
    vec![
        (
            "wrong aud",
            key.sign(
                &key.header(Some("at+jwt")),
                &claims(&app.issuer, "payments"),
            ),
            ValidationError::WrongAudience,
        ),
        (
            "typ JWT (an ID token's type)",
            key.sign(&key.header(Some("JWT")), &good),
            ValidationError::WrongType,
        ),
        (
            "no typ",
            key.sign(&key.header(None), &good),
            ValidationError::WrongType,
        ),
        (
            "expired",
            key.sign(&key.header(Some("at+jwt")), &expired),
            ValidationError::Expired,
        ),
        (
            "payload altered after signing",
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&widened).unwrap()),
                parts[2]
            ),
            ValidationError::BadSignature,
        ),
        (
            "signature altered",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                URL_SAFE_NO_PAD.encode(&signature)
            ),
            ValidationError::BadSignature,
        ),
    ]
}

#[tokio::test]
async fn the_shared_validator_refuses_own_key_tokens_with_a_wrong_audience_type_or_expiry() {
    let app = TestApp::spawn().await;
    let key = OwnKey::of(&app).await;
    let jwks =
        Arc::new(JwksCache::new(app.url("/oauth2/jwks"), JwksCacheOptions::default()).unwrap());
    jwks.fetch().await.unwrap();
    let mut config = ValidatorConfig::new(&app.issuer, "auth");
    config.verified_cache_entries = 0;
    let validator = Validator::new(config, jwks);

    // Control: the same key and claims, nothing wrong, is accepted.
    let control = key.sign(&key.header(Some("at+jwt")), &claims(&app.issuer, "auth"));
    assert_eq!(
        validator.validate(&control).await.unwrap().scope,
        "auth:admin"
    );
    for (name, token, expected) in cases(&app, &key) {
        assert_eq!(
            validator.validate(&token).await.unwrap_err(),
            expected,
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_admin_api_refuses_own_key_tokens_with_a_wrong_audience_type_or_expiry() {
    let app = TestApp::spawn().await;
    let key = OwnKey::of(&app).await;

    let control = key.sign(&key.header(Some("at+jwt")), &claims(&app.issuer, "auth"));
    assert_eq!(app.list_roles(&control).await.status(), 200);
    for (name, token, expected) in cases(&app, &key) {
        let res = app.list_roles(&token).await;
        assert_eq!(res.status(), 401, "{name}");
        assert!(www_authenticate(&res).contains("invalid_token"), "{name}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["detail"], expected.to_string(), "{name}");
    }
}
