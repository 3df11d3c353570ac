//! OAuth clients: the platform's services (client credentials) and user-facing
//! apps (authorization code), how they authenticate, and what they may ask for.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tracing::instrument;

use crate::crypto::{constant_time_eq, digest_secret, random_token};
use crate::error::{AuthError, conflict_on_unique};
use crate::oauth_error::OAuthError;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    #[serde(skip)]
    pub secret_digest: Option<Vec<u8>>,
    pub is_public: bool,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub allowed_audiences: Vec<String>,
    pub disabled: bool,
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

const COLUMNS: &str = "client_id, name, secret_digest, is_public, grant_types, redirect_uris, allowed_scopes, allowed_audiences, disabled";

#[instrument(skip_all, fields(client_id = %client_id))]
pub async fn find(pool: &PgPool, client_id: &str) -> Result<Option<Client>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM clients WHERE client_id = $1"
    ))
    .bind(client_id)
    .fetch_optional(pool)
    .await
}

/// How the client presented itself at the token, introspection or
/// revocation endpoint.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    secret: Option<String>,
    basic: bool,
}

impl ClientCredentials {
    /// `client_secret_basic` (RFC 6749 §2.3.1: id and secret are
    /// form-urlencoded inside Basic), `client_secret_post`, or `none` (a
    /// public client sending only `client_id`). Using two methods at once is
    /// refused.
    pub fn from_request(
        headers: &HeaderMap,
        form_id: Option<&str>,
        form_secret: Option<&str>,
    ) -> Result<Self, OAuthError> {
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method",
                ));
            }
            let basic = || -> Option<(String, String)> {
                let value = value.to_str().ok()?;
                let (scheme, encoded) = value.split_once(' ')?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return None;
                }
                let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
                let (id, secret) = decoded.split_once(':')?;
                Some((form_decode(id)?, form_decode(secret)?))
            };
            let (client_id, secret) = basic().ok_or(OAuthError::InvalidClient { basic: true })?;
            if form_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request("client_id does not match"));
            }
            return Ok(Self {
                client_id,
                secret: Some(secret),
                basic: true,
            });
        }
        let client_id = form_id
            .filter(|id| !id.is_empty())
            .ok_or(OAuthError::InvalidClient { basic: false })?;
        Ok(Self {
            client_id: client_id.to_owned(),
            secret: form_secret.map(ToOwned::to_owned),
            basic: false,
        })
    }

    /// The client, if the credentials are right. Every failure is the same
    /// `invalid_client`, so it does not tell which clients exist.
    #[instrument(skip_all, fields(client_id = %self.client_id))]
    pub async fn authenticate(&self, pool: &PgPool) -> Result<Client, OAuthError> {
        let fail = OAuthError::InvalidClient { basic: self.basic };
        let Some(client) = find(pool, &self.client_id).await? else {
            return Err(fail);
        };
        if client.disabled {
            return Err(fail);
        }
        match (&client.secret_digest, &self.secret, client.is_public) {
            (None, None, true) => Ok(client),
            (Some(stored), Some(given), false)
                if constant_time_eq(stored, &digest_secret(given)) =>
            {
                Ok(client)
            }
            _ => {
                tracing::info!(client_id = %self.client_id, "client authentication failed");
                Err(fail)
            }
        }
    }
}

fn form_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A scope token (RFC 6749 §3.3): printable ASCII except space, `"` and `\`.
pub fn parse_scope(scope: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for token in scope.split(' ').filter(|s| !s.is_empty()) {
        let valid = token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid || token.len() > 128 {
            return Err(OAuthError::invalid_scope("malformed scope"));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_owned());
        }
    }
    Ok(out)
}

/// Scopes of OpenID Connect itself, not of a service.
pub const OIDC_SCOPES: [&str; 3] = ["openid", "offline_access", "profile"];

fn service_of(scope: &str) -> Option<&str> {
    scope.split_once(':').map(|(service, _)| service)
}

/// The audience and the scopes to grant a client.
///
/// Service scopes are named `<service>:<action>` and a token is for one
/// service (its `aud`): the audience is the one asked for (`audience` or
/// RFC 8707 `resource`), or the one the requested scopes name, or the
/// client's only allowed audience. Every requested scope must be allowed to
/// the client and belong to the audience; no scope requested means every
/// allowed scope of the audience.
pub fn resolve_grant(
    client: &Client,
    requested: &[String],
    audience: Option<&str>,
) -> Result<(String, Vec<String>), OAuthError> {
    for scope in requested {
        let oidc = OIDC_SCOPES.contains(&scope.as_str());
        if !oidc && !client.allowed_scopes.contains(scope) {
            return Err(OAuthError::invalid_scope(format!(
                "scope {scope} is not allowed for this client"
            )));
        }
        if oidc
            && client.allows_grant("client_credentials")
            && !client.allows_grant("authorization_code")
        {
            return Err(OAuthError::invalid_scope(format!(
                "scope {scope} is for user sign-in"
            )));
        }
    }
    let services: Vec<&str> = requested.iter().filter_map(|s| service_of(s)).collect();
    let audience = match audience {
        Some(a) => a.to_owned(),
        None => match services.first() {
            Some(first) if services.iter().all(|s| s == first) => (*first).to_owned(),
            Some(_) => {
                return Err(OAuthError::invalid_scope(
                    "scopes of several services: ask for one audience at a time",
                ));
            }
            None => match client.allowed_audiences.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(OAuthError::invalid_request(
                        "audience is required for this client",
                    ));
                }
            },
        },
    };
    if !client.allowed_audiences.contains(&audience) {
        return Err(OAuthError::InvalidTarget(
            "the audience is not allowed for this client".into(),
        ));
    }
    if let Some(other) = services.iter().find(|s| **s != audience) {
        return Err(OAuthError::invalid_scope(format!(
            "a scope of {other} cannot be granted for audience {audience}"
        )));
    }
    let scopes = if requested.is_empty() {
        client
            .allowed_scopes
            .iter()
            .filter(|s| service_of(s) == Some(audience.as_str()))
            .cloned()
            .collect()
    } else {
        requested.to_vec()
    };
    Ok((audience, scopes))
}

#[derive(Debug, Deserialize)]
/// A client to register (the admin API's body).
pub struct NewClient {
    pub client_id: String,
    name: String,
    #[serde(default)]
    public: bool,
    grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_scopes: Vec<String>,
    #[serde(default)]
    allowed_audiences: Vec<String>,
}

/// Whether `id` has the shape of a UUID (32 hex digits, hyphens aside).
/// Users' `sub` is their UUID and a client-credentials token's `sub` is the
/// client id: keeping UUID-shaped ids away from clients keeps the two
/// namespaces disjoint, so a `sub` never names both a user and a client.
/// The database enforces the same rule (migration 20261126100003).
pub fn is_uuid_shaped(id: &str) -> bool {
    let digits: Vec<char> = id.chars().filter(|c| *c != '-').collect();
    digits.len() == 32 && digits.iter().all(char::is_ascii_hexdigit)
}

fn validate(new: &NewClient) -> Result<(), AuthError> {
    const GRANTS: [&str; 3] = ["client_credentials", "authorization_code", "refresh_token"];
    if is_uuid_shaped(&new.client_id) {
        return Err(AuthError::invalid(
            "client_id",
            "client_id must not look like a UUID: UUIDs name users",
        ));
    }
    if new.grant_types.is_empty()
        || new
            .grant_types
            .iter()
            .any(|g| !GRANTS.contains(&g.as_str()))
    {
        return Err(AuthError::invalid(
            "grant_types",
            "unknown or no grant type",
        ));
    }
    if new.public && new.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(AuthError::invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    for uri in &new.redirect_uris {
        let parsed = url::Url::parse(uri)
            .map_err(|_| AuthError::invalid("redirect_uris", "not an absolute URI"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if parsed.fragment().is_some() || (parsed.scheme() != "https" && !loopback) {
            return Err(AuthError::invalid(
                "redirect_uris",
                "https (or http on loopback) without fragment",
            ));
        }
    }
    if new.grant_types.iter().any(|g| g == "authorization_code") && new.redirect_uris.is_empty() {
        return Err(AuthError::invalid(
            "redirect_uris",
            "authorization_code needs a redirect URI",
        ));
    }
    for scope in &new.allowed_scopes {
        if parse_scope(scope).map(|s| s.len()).ok() != Some(1) {
            return Err(AuthError::invalid("allowed_scopes", "malformed scope"));
        }
    }
    Ok(())
}

/// Registers a checked `new` client; a confidential one gets a secret,
/// returned here once (only its digest is kept).
pub async fn create(pool: &PgPool, new: &NewClient) -> Result<(Client, Option<String>), AuthError> {
    validate(new)?;
    let secret = if new.public {
        None
    } else {
        Some(random_token().map_err(|e| AuthError::Hashing(e.to_string()))?)
    };
    sqlx::query(
        "INSERT INTO clients (client_id, name, secret_digest, is_public, grant_types, redirect_uris,
                              allowed_scopes, allowed_audiences)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&new.client_id)
    .bind(&new.name)
    .bind(secret.as_deref().map(digest_secret))
    .bind(new.public)
    .bind(&new.grant_types)
    .bind(&new.redirect_uris)
    .bind(&new.allowed_scopes)
    .bind(&new.allowed_audiences)
    .execute(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_check_violation() => AuthError::invalid(
            "client_id",
            "client_id must match ^[a-z][a-z0-9_.-]{1,63}$ and not look like a UUID",
        ),
        _ => conflict_on_unique("client")(e),
    })?;
    tracing::info!("client created");
    let client = find(pool, &new.client_id)
        .await?
        .ok_or(AuthError::NotFound("client"))?;
    Ok((client, secret))
}

/// Gives confidential client `client_id` a new secret (the old one stops
/// working), returned here once; `None` when there is no such client.
pub async fn issue_secret(pool: &PgPool, client_id: &str) -> Result<Option<String>, AuthError> {
    let secret = random_token().map_err(|e| AuthError::Hashing(e.to_string()))?;
    let updated =
        sqlx::query("UPDATE clients SET secret_digest = $2 WHERE client_id = $1 AND NOT is_public")
            .bind(client_id)
            .bind(digest_secret(&secret))
            .execute(pool)
            .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    tracing::info!("client secret issued");
    Ok(Some(secret))
}

/// Disables client `client_id`; whether it exists.
pub async fn disable(pool: &PgPool, client_id: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query("UPDATE clients SET disabled = true WHERE client_id = $1")
        .bind(client_id)
        .execute(pool)
        .await?;
    if updated.rows_affected() > 0 {
        tracing::info!("client disabled");
    }
    Ok(updated.rows_affected() > 0)
}

/// Creates a confidential client-credentials client allowed `scope` for
/// `audience` unless one with that id exists, which stays as it is (its
/// secret included: an administrator may have rotated it). True when
/// created.
pub async fn create_service_client_once(
    pool: &PgPool,
    client_id: &str,
    name: &str,
    secret_digest: &[u8],
    scope: &str,
    audience: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO clients (client_id, name, secret_digest, grant_types, allowed_scopes, allowed_audiences)
         VALUES ($1, $2, $3, ARRAY['client_credentials'], ARRAY[$4], ARRAY[$5])
         ON CONFLICT (client_id) DO NOTHING",
    )
    .bind(client_id)
    .bind(name)
    .bind(secret_digest)
    .bind(scope)
    .bind(audience)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            client_id: "payments".into(),
            name: "p".into(),
            secret_digest: None,
            is_public: false,
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            allowed_scopes: vec![
                "bookkeeping:write".into(),
                "bookkeeping:read".into(),
                "communication:write".into(),
            ],
            allowed_audiences: vec!["bookkeeping".into(), "communication".into()],
            disabled: false,
        }
    }

    fn scopes(s: &str) -> Vec<String> {
        parse_scope(s).unwrap()
    }

    #[test]
    fn the_audience_follows_the_scopes_and_scopes_stay_within_the_client() {
        let c = client();
        let (aud, granted) = resolve_grant(&c, &scopes("bookkeeping:write"), None).unwrap();
        assert_eq!(aud, "bookkeeping");
        assert_eq!(granted, ["bookkeeping:write"]);
        let (aud, granted) = resolve_grant(&c, &[], Some("bookkeeping")).unwrap();
        assert_eq!(aud, "bookkeeping");
        assert_eq!(granted, ["bookkeeping:write", "bookkeeping:read"]);

        assert_eq!(
            resolve_grant(&c, &scopes("payments:write"), None)
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
        assert_eq!(
            resolve_grant(&c, &scopes("bookkeeping:write communication:write"), None)
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
        assert_eq!(
            resolve_grant(&c, &scopes("bookkeeping:write"), Some("communication"))
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
        assert_eq!(
            resolve_grant(&c, &[], Some("payments")).unwrap_err().code(),
            "invalid_target"
        );
        assert_eq!(
            resolve_grant(&c, &[], None).unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            resolve_grant(&c, &scopes("openid"), None)
                .unwrap_err()
                .code(),
            "invalid_scope"
        );
    }

    #[test]
    fn malformed_scopes_are_refused_and_duplicates_collapse() {
        assert!(parse_scope("a\"b").is_err());
        assert!(parse_scope("a\\b").is_err());
        assert!(parse_scope("é").is_err());
        assert_eq!(scopes("a  b a"), ["a", "b"]);
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_mixing_methods_is_refused() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        let creds = ClientCredentials::from_request(&headers, None, None).unwrap();
        assert_eq!(creds.client_id, "my:client");
        assert_eq!(creds.secret.as_deref(), Some("s+cret"));
        assert!(ClientCredentials::from_request(&headers, None, Some("x")).is_err());
        assert!(ClientCredentials::from_request(&HeaderMap::new(), None, None).is_err());
    }

    #[test]
    fn uuid_shaped_client_ids_are_recognised_in_every_spelling() {
        let user = uuid::Uuid::now_v7();
        assert!(is_uuid_shaped(&user.to_string()));
        assert!(is_uuid_shaped(&user.simple().to_string()));
        assert!(is_uuid_shaped("a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5"));
        assert!(is_uuid_shaped("a0b1c2d3e4f5-a6b7c8d9e0f1a2b3c4d5"));
        assert!(!is_uuid_shaped("payments"));
        assert!(!is_uuid_shaped("a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d"));
        assert!(!is_uuid_shaped("shop-a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5"));
    }
}
