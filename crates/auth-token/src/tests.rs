//! Hostile and ordinary tokens against the validator and the axum guard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::validator::unix_now;
use crate::*;

const ISS: &str = "http://auth.test";
const AUD: &str = "payments";

struct Signer {
    kid: String,
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Self {
            kid: kid.into(),
            pair,
        }
    }

    fn jwk(&self) -> Jwk {
        Jwk::es256(&self.kid, self.pair.public_key().as_ref()).unwrap()
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }

    fn header(&self) -> Value {
        json!({ "alg": "ES256", "typ": "at+jwt", "kid": self.kid })
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn claims() -> Value {
    let now = unix_now();
    json!({
        "iss": ISS, "sub": "svc-bookkeeping", "aud": AUD, "exp": now + 300, "iat": now,
        "jti": "0193-jti", "client_id": "bookkeeping", "scope": "payments:read payments:write",
    })
}

fn validator_for(signer: &Signer) -> Validator {
    let keys = StaticKeys::new([signer.jwk().verifying_key().unwrap()]);
    Validator::new(ValidatorConfig::new(ISS, AUD), Arc::new(keys))
}

async fn refused(validator: &Validator, token: &str) -> ValidationError {
    validator
        .validate(token)
        .await
        .expect_err("must be refused")
}

#[tokio::test]
async fn a_good_token_passes_and_its_claims_are_returned() {
    let signer = Signer::new("k1");
    let claims = validator_for(&signer)
        .validate(&signer.token(&claims()))
        .await
        .unwrap();
    assert_eq!(claims.client_id, "bookkeeping");
    assert!(claims.has_scope("payments:write"));
    assert!(!claims.has_scope("payments"));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": "k1" })),
        b64(&claims())
    );
    assert!(matches!(
        refused(&v, &unsigned).await,
        ValidationError::AlgorithmNotAllowed(_)
    ));
    // Also with the signature of a real token appended.
    let real = signer.token(&claims());
    let sig = real.rsplit('.').next().unwrap();
    let with_sig = format!("{unsigned}{sig}");
    assert!(matches!(
        refused(&v, &with_sig).await,
        ValidationError::AlgorithmNotAllowed(_)
    ));
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": "k1" });
    let input = format!("{}.{}", b64(&header), b64(&claims()));
    // The classic confusion attack: the public key (as JWK JSON and as raw
    // point bytes) used as the HMAC secret.
    for secret in [
        serde_json::to_vec(&signer.jwk()).unwrap(),
        signer.pair.public_key().as_ref().to_vec(),
    ] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert!(matches!(
            refused(&v, &token).await,
            ValidationError::AlgorithmNotAllowed(_)
        ));
    }
}

#[tokio::test]
async fn wrong_audience_issuer_and_type_are_refused() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let mut c = claims();
    c["aud"] = json!("bookkeeping");
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::WrongAudience
    );
    c["aud"] = json!(["bookkeeping", "communication"]);
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::WrongAudience
    );
    c["aud"] = json!(["bookkeeping", AUD]);
    assert!(v.validate(&signer.token(&c)).await.is_ok());

    let mut c = claims();
    c["iss"] = json!("http://evil.test");
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::WrongIssuer
    );

    // An ID token (typ JWT) is not an access token.
    let id_header = json!({ "alg": "ES256", "typ": "JWT", "kid": "k1" });
    assert_eq!(
        refused(&v, &signer.sign(&id_header, &claims())).await,
        ValidationError::WrongType
    );
    let no_typ = json!({ "alg": "ES256", "kid": "k1" });
    assert_eq!(
        refused(&v, &signer.sign(&no_typ, &claims())).await,
        ValidationError::WrongType
    );
    let long_typ = json!({ "alg": "ES256", "typ": "application/at+jwt", "kid": "k1" });
    assert!(v.validate(&signer.sign(&long_typ, &claims())).await.is_ok());
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let now = unix_now();
    let mut c = claims();
    c["exp"] = json!(now - 60);
    c["iat"] = json!(now - 360);
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::Expired
    );
    // Within the 5 s leeway it still passes.
    c["exp"] = json!(now - 2);
    assert!(v.validate(&signer.token(&c)).await.is_ok());

    let mut c = claims();
    c["nbf"] = json!(now + 60);
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::NotYetValid
    );
    let mut c = claims();
    c["iat"] = json!(now + 60);
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::NotYetValid
    );
}

#[tokio::test]
async fn tampered_payload_and_signature_and_foreign_keys_are_refused() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let token = signer.token(&claims());
    let parts: Vec<&str> = token.split('.').collect();

    let mut c = claims();
    c["scope"] = json!("payments:admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_eq!(refused(&v, &tampered).await, ValidationError::BadSignature);

    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x01;
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(refused(&v, &bad_sig).await, ValidationError::BadSignature);

    // Signed by another key that claims our kid.
    let impostor = Signer::new("k1");
    assert_eq!(
        refused(&v, &impostor.token(&claims())).await,
        ValidationError::BadSignature
    );
    // Unknown kid.
    let stranger = Signer::new("k2");
    assert_eq!(
        refused(&v, &stranger.token(&claims())).await,
        ValidationError::UnknownKey
    );
    // A verified token stays verified only for the identical string: the
    // cache must not let a tampered copy through after the original passed.
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(refused(&v, &tampered).await, ValidationError::BadSignature);
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_panicking() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);
    let token = signer.token(&claims());
    let cases = [
        String::new(),
        "a.b".into(),
        "a.b.c.d".into(),
        format!("{token}.extra"),
        token.replacen('.', "=.", 1),
        "!!!.###.$$$".into(),
        format!("{}.{}.", b64(&json!("just a string")), b64(&claims())),
        "x".repeat(20_000),
    ];
    for case in cases {
        assert!(v.validate(&case).await.is_err(), "{case:.40}");
    }
    let no_kid = signer.sign(&json!({ "alg": "ES256", "typ": "at+jwt" }), &claims());
    assert_eq!(refused(&v, &no_kid).await, ValidationError::MissingKeyId);
    let crit = signer.sign(
        &json!({ "alg": "ES256", "typ": "at+jwt", "kid": "k1", "crit": ["exp"] }),
        &claims(),
    );
    assert_eq!(refused(&v, &crit).await, ValidationError::Malformed);
    let mut c = claims();
    c.as_object_mut().unwrap().remove("jti");
    assert_eq!(
        refused(&v, &signer.token(&c)).await,
        ValidationError::MalformedClaims
    );
}

#[test]
fn only_es256_p256_keys_are_usable() {
    let signer = Signer::new("k1");
    let mut jwk = signer.jwk();
    assert!(jwk.verifying_key().is_ok());
    jwk.alg = Some("HS256".into());
    assert!(jwk.verifying_key().is_err());
    let mut jwk = signer.jwk();
    jwk.crv = Some("P-384".into());
    assert!(jwk.verifying_key().is_err());
    let mut jwk = signer.jwk();
    jwk.key_use = Some("enc".into());
    assert!(jwk.verifying_key().is_err());
    let set: JwkSet = serde_json::from_value(json!({ "keys": [
        { "kty": "RSA", "kid": "r1", "n": "AQAB", "e": "AQAB" },
        signer.jwk(),
    ]}))
    .unwrap();
    assert_eq!(set.verifying_keys().len(), 1);
}

/// A key source that learns a key only on refresh, counting refreshes.
#[derive(Debug)]
struct Rotating {
    later: std::sync::Mutex<Option<VerifyingKey>>,
    known: std::sync::RwLock<Option<Arc<VerifyingKey>>>,
    refreshes: AtomicUsize,
}

impl KeySource for Rotating {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.known
            .read()
            .unwrap()
            .clone()
            .filter(|k| k.kid() == kid)
    }

    fn refresh(&self) -> KeysFuture<'_> {
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        if let Some(k) = self.later.lock().unwrap().take() {
            *self.known.write().unwrap() = Some(Arc::new(k));
        }
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn an_unknown_kid_triggers_a_refresh_that_finds_a_rotated_key() {
    let signer = Signer::new("new-key");
    let keys = Arc::new(Rotating {
        later: std::sync::Mutex::new(Some(signer.jwk().verifying_key().unwrap())),
        known: std::sync::RwLock::new(None),
        refreshes: AtomicUsize::new(0),
    });
    let v = Validator::new(ValidatorConfig::new(ISS, AUD), keys.clone());
    assert!(v.validate(&signer.token(&claims())).await.is_ok());
    assert_eq!(keys.refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_jwks_cache_refetches_on_unknown_kid_but_not_more_often_than_allowed() {
    let first = Signer::new("first");
    let second = Signer::new("second");
    let served = Arc::new(std::sync::Mutex::new(JwkSet {
        keys: vec![first.jwk()],
    }));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = {
        let served = served.clone();
        let hits = hits.clone();
        Router::new().route(
            "/jwks",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let set = served.lock().unwrap().clone();
                async move { axum::Json(set) }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cache = Arc::new(
        JwksCache::new(
            format!("http://{addr}/jwks"),
            JwksCacheOptions {
                min_refresh_interval: std::time::Duration::from_millis(300),
                ..JwksCacheOptions::default()
            },
        )
        .unwrap(),
    );
    let v = Validator::new(ValidatorConfig::new(ISS, AUD), cache.clone());
    assert!(v.validate(&first.token(&claims())).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "first use fetches");
    assert!(v.validate(&first.token(&claims())).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 1, "then the cache serves");

    // Rotation: auth publishes a second key.
    served.lock().unwrap().keys.push(second.jwk());
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    assert!(v.validate(&second.token(&claims())).await.is_ok());
    assert_eq!(hits.load(Ordering::SeqCst), 2);

    // A burst of made-up kids costs at most one more fetch.
    let junk: Vec<_> = (0..50)
        .map(|i| Signer::new(&format!("junk-{i}")).token(&claims()))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    let results = futures_join(junk.iter().map(|t| v.validate(t))).await;
    assert!(
        results
            .iter()
            .all(|r| r == &Err(ValidationError::UnknownKey))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_jwks_cache_sends_its_headers_with_every_fetch() {
    let signer = Signer::new("k");
    let set = JwkSet {
        keys: vec![signer.jwk()],
    };
    // Plays a sidecar that requires its API token.
    let app = Router::new().route(
        "/jwks",
        get(move |headers: axum::http::HeaderMap| {
            let set = set.clone();
            async move {
                if headers.get("dapr-api-token").is_some_and(|t| t == "s3cret") {
                    Ok(axum::Json(set))
                } else {
                    Err(StatusCode::UNAUTHORIZED)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let url = format!("http://{addr}/jwks");
    let without = JwksCache::new(url.clone(), JwksCacheOptions::default()).unwrap();
    assert!(without.fetch().await.is_err());
    let mut options = JwksCacheOptions::default();
    options.headers.insert(
        "dapr-api-token",
        axum::http::HeaderValue::from_static("s3cret"),
    );
    let with = JwksCache::new(url, options).unwrap();
    assert_eq!(with.fetch().await.unwrap(), 1);
}

async fn futures_join<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    let handles: Vec<_> = futures.collect();
    for f in handles {
        out.push(f.await);
    }
    out
}

fn guarded(v: &Validator) -> Router {
    Router::new()
        .route(
            "/pay",
            get(|Authenticated(claims): Authenticated| async move { claims.client_id.clone() }),
        )
        .route_layer(RequireScope::new(v, "payments:write"))
}

async fn call(router: Router, auth: Option<&str>) -> (StatusCode, String, String, Value) {
    let mut req = Request::get("/pay");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = router
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, challenge, content_type, body)
}

#[tokio::test]
async fn the_guard_answers_401_403_or_passes_the_claims_on() {
    let signer = Signer::new("k1");
    let v = validator_for(&signer);

    let (status, challenge, ct, body) = call(guarded(&v), None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge, "Bearer realm=\"payments\"");
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "missing_token");

    let (status, challenge, _, body) = call(guarded(&v), Some("Basic abc")).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_request"), "{challenge}");
    assert_eq!(body["code"], "invalid_token");

    let mut expired = claims();
    expired["exp"] = json!(unix_now() - 100);
    let bearer = format!("Bearer {}", signer.token(&expired));
    let (status, challenge, _, body) = call(guarded(&v), Some(&bearer)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(body["code"], "invalid_token");

    let mut read_only = claims();
    read_only["scope"] = json!("payments:read");
    let bearer = format!("Bearer {}", signer.token(&read_only));
    let (status, challenge, ct, body) = call(guarded(&v), Some(&bearer)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\", scope=\"payments:write\""),
        "{challenge}"
    );
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "insufficient_scope");

    let bearer = format!("bearer {}", signer.token(&claims()));
    let (status, _, _, body) = call(guarded(&v), Some(&bearer)).await;
    assert_eq!(status, 200);
    assert_eq!(body, Value::String("bookkeeping".into()));
}

#[tokio::test]
async fn the_extractor_without_the_layer_fails_closed() {
    let router = Router::new().route(
        "/open",
        get(|Authenticated(c): Authenticated| async move { c.sub.clone() }),
    );
    let res = router
        .oneshot(Request::get("/open").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
