//! Key rotation: a new key is published before it signs; tokens signed by
//! the old key stay valid until they expire; the old key leaves the JWKS
//! once nothing it signed can be valid. Private keys are sealed at rest.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestApp;

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    app.jwks()
        .await
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_and_keeps_old_tokens_valid_until_expiry() {
    let app = TestApp::spawn_with(|s| {
        s.keys.publish_delay_secs = 2;
        s.oauth.access_token_ttl_secs = 4;
        s.oauth.id_token_ttl_secs = 4;
    })
    .await;
    let rs = app.resource_server().await;
    let old_token = app.client_token(&rs, "payments:read").await;
    let old_kid = kid_of(&old_token);
    assert_eq!(jwks_kids(&app).await, vec![old_kid.clone()]);

    let (status, rotated) = app
        .admin_call(reqwest::Method::POST, "/admin/keys/rotate", None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();

    // Published at once, not signing yet.
    let kids = jwks_kids(&app).await;
    assert!(
        kids.contains(&new_kid) && kids.contains(&old_kid),
        "{kids:?}"
    );
    let during = app.client_token(&rs, "payments:read").await;
    assert_eq!(
        kid_of(&during),
        old_kid,
        "the new key must not sign before the delay"
    );

    tokio::time::sleep(Duration::from_millis(2300)).await;
    let after = app.client_token(&rs, "payments:read").await;
    assert_eq!(kid_of(&after), new_kid);
    // The token signed by the old key still validates against the JWKS.
    assert!(app.decode_access_token(&during, "payments").await.is_ok());
    assert!(app.decode_access_token(&after, "payments").await.is_ok());

    // Once every token of the old key has expired, it leaves the JWKS.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert_eq!(jwks_kids(&app).await, vec![new_kid.clone()]);
    assert!(app.decode_access_token(&during, "payments").await.is_err());

    let (_, keys) = app
        .admin_call(reqwest::Method::GET, "/admin/keys", None)
        .await;
    let keys: Vec<Value> = keys.as_array().unwrap().clone();
    assert_eq!(keys.len(), 2);
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest_and_the_jwks_has_no_private_parts() {
    let app = TestApp::spawn().await;
    let jwks: Value = app.get("/oauth2/jwks").await.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "no private component");

    let mut conn = app.db.connect().await.unwrap();
    let (sealed, public): (Vec<u8>, Value) =
        sqlx::query_as("SELECT private_key_sealed, public_jwk FROM signing_keys LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    // A PKCS#8 P-256 document starts with this DER prefix; sealed, it must not.
    assert!(!sealed.starts_with(&[0x30, 0x81]));
    assert!(sealed.len() > 12 + 16);
    assert_eq!(public["x"], key["x"]);
}

#[tokio::test]
async fn keys_sealed_under_another_encryption_key_are_left_out_and_a_new_key_signs() {
    use auth::crypto::KeyEncryptionKey;
    use auth::keys::{KeyRing, KeySchedule};

    // The running app has sealed its first key under the configured key.
    let app = TestApp::spawn().await;
    let first_kid = jwks_kids(&app).await.remove(0);

    // Another instance starts with a different encryption key (the old one
    // was lost or replaced): it must start, leave the unreadable key out and
    // sign with a new one.
    let pool = app.db.pool().await.unwrap();
    let other_kek = KeyEncryptionKey::new(&[7u8; 32]).unwrap();
    let schedule = KeySchedule {
        publish_delay: Duration::from_secs(0),
        max_token_lifetime: Duration::from_secs(600),
    };
    let ring = KeyRing::load(pool, other_kek, schedule)
        .await
        .expect("the key ring starts");
    let signer = ring.signer().expect("a key that signs");
    assert_ne!(signer.kid, first_kid);
}

#[tokio::test]
async fn the_rotation_schedule_is_kept_at_full_precision() {
    let app = TestApp::spawn_with(|s| s.keys.publish_delay_secs = 60).await;
    let (status, rotated) = app
        .admin_call(reqwest::Method::POST, "/admin/keys/rotate", None)
        .await;
    assert_eq!(status, 201, "{rotated}");
    let (status, keys) = app
        .admin_call(reqwest::Method::GET, "/admin/keys", None)
        .await;
    assert_eq!(status, 200, "{keys}");
    let keys = keys.as_array().unwrap();
    let stored = keys.iter().find(|k| k["kid"] == rotated["kid"]).unwrap();
    // What rotation announced is exactly what was stored, to the microsecond.
    assert_eq!(stored["publish_at"], rotated["publish_at"], "{keys:?}");
    assert_eq!(stored["activate_at"], rotated["activate_at"], "{keys:?}");
    // The old key hands over at that very instant.
    let old = keys.iter().find(|k| k["kid"] != rotated["kid"]).unwrap();
    assert_eq!(old["retire_at"], rotated["activate_at"], "{keys:?}");
    let activate_at = rotated["activate_at"].as_str().unwrap();
    let fraction = activate_at
        .split_once('.')
        .map_or("", |(_, f)| f.trim_end_matches('Z'));
    assert!(fraction.len() <= 6, "{activate_at}");
}
