//! Issuing tokens (by grant type: [`grant_types`]), introspecting and
//! revoking them. The statements on grants, codes and refresh tokens are in
//! [`crate::grants`].
//!
//! Access and ID tokens are ES256 JWTs (self-contained: resource servers
//! validate them without calling us). Refresh tokens and codes are opaque
//! random strings stored as SHA-256 digests. Client-credentials tokens are
//! not stored at all — that is what makes the grant cheap — so revoking one
//! records its `jti` until it expires; tokens issued from a user's grant
//! carry `grant_id`, and revoking the grant deactivates them all.

use std::sync::Arc;

use platform_auth_token::{ACCESS_TOKEN_TYPE, AccessClaims, Algorithm, Audience, Jws, KeySource};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

use crate::crypto::{digest_secret, random_token};
use crate::grants;
use crate::keys::KeyRing;
use crate::oauth_error::{OAuthError, server_error};
use crate::settings::OAuthSettings;

mod grant_types;

pub use grant_types::TokenRequest;

/// Clock skew tolerated when we read back our own tokens.
const LEEWAY_SECS: i64 = 5;

#[derive(Debug, Clone)]
pub struct Tokens {
    pool: PgPool,
    keys: Arc<KeyRing>,
    settings: Arc<OAuthSettings>,
}

/// An OAuth token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    preferred_username: Option<&'a str>,
}

/// What an access token is about.
#[derive(Debug)]
pub struct Subject<'a> {
    pub sub: String,
    pub client_id: &'a str,
    pub audience: &'a str,
    pub scope: &'a str,
    pub grant_id: Option<Uuid>,
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Tokens {
    pub fn new(pool: PgPool, keys: Arc<KeyRing>, settings: Arc<OAuthSettings>) -> Self {
        Self {
            pool,
            keys,
            settings,
        }
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// An RFC 9068 access token.
    pub fn access_token(&self, subject: &Subject<'_>) -> Result<TokenResponse, OAuthError> {
        let iat = now();
        let ttl = self.settings.access_token_ttl_secs;
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: subject.sub.clone(),
            aud: Audience::One(subject.audience.to_owned()),
            exp: iat + i64::try_from(ttl).unwrap_or(i64::MAX / 2),
            iat,
            nbf: None,
            jti: Uuid::now_v7().to_string(),
            client_id: subject.client_id.to_owned(),
            scope: subject.scope.to_owned(),
            grant_id: subject.grant_id.map(|g| g.to_string()),
        };
        let access_token = self.keys.signer()?.sign_jwt(ACCESS_TOKEN_TYPE, &claims)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: ttl,
            scope: subject.scope.to_owned(),
            refresh_token: None,
            id_token: None,
        })
    }

    /// An OpenID Connect ID token for `client_id`.
    pub fn id_token(
        &self,
        user_id: Uuid,
        username: Option<&str>,
        client_id: &str,
        nonce: Option<&str>,
        auth_time: i64,
    ) -> Result<String, OAuthError> {
        let iat = now();
        let claims = IdTokenClaims {
            iss: &self.settings.issuer,
            sub: user_id.to_string(),
            aud: client_id,
            exp: iat + i64::try_from(self.settings.id_token_ttl_secs).unwrap_or(i64::MAX / 2),
            iat,
            auth_time,
            nonce,
            preferred_username: username,
        };
        Ok(self.keys.signer()?.sign_jwt("JWT", &claims)?)
    }

    /// Stores and returns a new refresh token of `grant_id`.
    async fn new_refresh_token(
        &self,
        conn: &mut sqlx::PgConnection,
        grant_id: Uuid,
    ) -> Result<String, OAuthError> {
        let token = random_token().map_err(server_error)?;
        grants::add_refresh_token(
            conn,
            grant_id,
            &digest_secret(&token),
            self.settings.refresh_token_ttl_secs,
        )
        .await?;
        Ok(token)
    }

    /// Our own access token, signature and time checked, whatever its
    /// audience; `None` when it is not one.
    fn verify_own(&self, token: &str) -> Option<AccessClaims> {
        let jws = Jws::parse(token).ok()?;
        if Algorithm::parse(&jws.header.alg)? != Algorithm::Es256
            || jws.header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE)
        {
            return None;
        }
        let key = self.keys.key(jws.header.kid.as_deref()?)?;
        jws.verify(&key).ok()?;
        let claims: AccessClaims = jws.claims().ok()?;
        let now = now();
        let valid = claims.iss == self.settings.issuer
            && claims.exp > now
            && claims.nbf.unwrap_or(claims.iat) <= now + LEEWAY_SECS;
        valid.then_some(claims)
    }

    /// RFC 7662. Anything not active is exactly `{"active": false}`.
    #[instrument(skip_all)]
    pub async fn introspect(&self, token: &str) -> Result<Value, OAuthError> {
        let inactive = json!({ "active": false });
        if let Some(claims) = self.verify_own(token) {
            let Ok(jti) = Uuid::parse_str(&claims.jti) else {
                return Ok(inactive);
            };
            let grant_id = claims
                .grant_id
                .as_deref()
                .and_then(|g| Uuid::parse_str(g).ok());
            let revoked: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1)
                     OR EXISTS (SELECT 1 FROM grants WHERE id = $2 AND revoked_at IS NOT NULL)",
            )
            .bind(jti)
            .bind(grant_id)
            .fetch_one(&self.pool)
            .await?;
            if revoked {
                return Ok(inactive);
            }
            let mut body = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "aud": claims.aud,
                "iss": claims.iss,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
            });
            if let Some(grant) = claims.grant_id {
                body["grant_id"] = json!(grant);
            }
            return Ok(body);
        }
        let row = grants::find_active_refresh_token(&self.pool, &digest_secret(token)).await?;
        Ok(match row {
            Some(refresh) => json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": refresh.scope,
                "client_id": refresh.client_id,
                "sub": refresh.user_id.to_string(),
                "aud": refresh.audience,
                "iss": self.settings.issuer,
                "exp": refresh.expires_at.unix_timestamp(),
                "iat": refresh.issued_at.unix_timestamp(),
            }),
            None => inactive,
        })
    }

    /// RFC 7009. Only the client a token was issued to can revoke it; for
    /// anyone else, and for unknown tokens, nothing happens (and the answer
    /// is the same 200, so revocation cannot probe for tokens).
    #[instrument(skip_all, fields(client_id = %client_id))]
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<(), OAuthError> {
        if let Some(claims) = self.verify_own(token) {
            if claims.client_id != client_id {
                tracing::info!("revocation of another client's token ignored");
                return Ok(());
            }
            if let Ok(jti) = Uuid::parse_str(&claims.jti) {
                sqlx::query(
                    "INSERT INTO revoked_access_tokens (jti, expires_at)
                     VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING",
                )
                .bind(jti)
                .bind(claims.exp as f64)
                .execute(&self.pool)
                .await?;
                tracing::info!(token.jti = %jti, "access token revoked");
            }
            return Ok(());
        }
        if grants::revoke_by_refresh_token(&self.pool, &digest_secret(token), client_id).await? {
            tracing::info!("grant revoked through its refresh token");
        }
        Ok(())
    }
}
