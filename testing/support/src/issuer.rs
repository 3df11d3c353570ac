//! A stand-in token issuer for testing resource servers: an ES256 key, its
//! JWKS served on a free port, and access tokens minted in the exact shape
//! `auth` issues (RFC 9068). It is not a fake of Dapr; it replaces `auth`
//! only where a service's own tests need tokens (auth's real tokens are
//! tested against auth itself).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth_token::{Jwk, JwkSet};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct TestIssuer {
    issuer: String,
    jwks_url: String,
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
    server: JoinHandle<()>,
}

impl TestIssuer {
    pub async fn start() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("cannot load the P-256 key"))?;
        let kid = format!("test-{}", uuid::Uuid::new_v4().simple());
        let jwk: Jwk = Jwk::es256(kid.clone(), key.public_key().as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let jwks = serde_json::to_value(JwkSet { keys: vec![jwk] })?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = Router::new().route(
            "/oauth2/jwks",
            get(move || std::future::ready(axum::Json(jwks.clone()))),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            jwks_url: format!("{base}/oauth2/jwks"),
            issuer: base,
            key,
            kid,
            rng,
            server,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks_url(&self) -> &str {
        &self.jwks_url
    }

    /// Makes a service trust this issuer's tokens: its issuer and JWKS URL
    /// go into the service's `auth` settings.
    pub fn apply_to(&self, auth: &mut platform_settings::AuthSettings) {
        auth.issuer = self.issuer.clone();
        auth.jwks_url = Some(self.jwks_url.clone());
    }

    /// An access token for `audience` with `scopes`, valid for five minutes.
    pub fn token(&self, audience: &str, scopes: &[&str]) -> String {
        self.token_with(audience, scopes, 300)
    }

    /// As [`TestIssuer::token`], expiring `lifetime_secs` from now (negative: expired).
    pub fn token_with(&self, audience: &str, scopes: &[&str], lifetime_secs: i64) -> String {
        self.token_of("test-client", audience, scopes, lifetime_secs)
    }

    /// As [`TestIssuer::token`], issued to the OAuth client `client_id`
    /// (also the subject, as for a client-credentials token).
    pub fn token_for(&self, client_id: &str, audience: &str, scopes: &[&str]) -> String {
        self.token_of(client_id, audience, scopes, 300)
    }

    fn token_of(
        &self,
        client_id: &str,
        audience: &str,
        scopes: &[&str],
        lifetime_secs: i64,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": self.kid });
        let claims = json!({
            "iss": self.issuer, "sub": client_id, "aud": audience, "client_id": client_id,
            "iat": now, "exp": now + lifetime_secs, "jti": uuid::Uuid::new_v4().to_string(),
            "scope": scopes.join(" "),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()));
        format!("{signing_input}.{}", signature.unwrap_or_default())
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}
