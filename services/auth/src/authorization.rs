//! An authorization request (RFC 6749 §4.1.1, PKCE S256 only, RFC 7636)
//! checked against its client, and the single-use code issued once the
//! user signed in. The HTTP side (login form, redirects) is
//! `routes/authorize.rs`.
//!
//! Errors about the client or the redirect URI are shown to the user and
//! never redirected (an attacker-chosen URI must not receive anything);
//! every other error goes back to the client's redirect URI (§4.1.2.1).

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use crate::clients::{self, Client, OIDC_SCOPES, parse_scope, resolve_grant};
use crate::crypto::{digest_secret, random_token};
use crate::error::AuthError;
use crate::grants::{self, NewGrant};
use crate::oauth_error::OAuthError;
use crate::settings::OAuthSettings;
use crate::users::Users;

/// A checked authorization request.
#[derive(Debug)]
pub struct Authorization {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// The request parameters, echoed into the login form.
    pub params: Vec<(String, String)>,
}

/// Why a request is refused, and where the refusal is shown.
#[derive(Debug)]
pub enum Refusal {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Here(String),
    /// Sent back to the client.
    Back {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

const PARAMS: [&str; 9] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "audience",
];

pub async fn check(
    pool: &PgPool,
    params: &HashMap<String, String>,
) -> Result<Authorization, Refusal> {
    let get = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let client_id =
        get("client_id").ok_or_else(|| Refusal::Here("client_id is required".into()))?;
    let client = clients::find(pool, client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "client lookup failed");
            Refusal::Here("temporarily unavailable".into())
        })?
        .filter(|c| !c.disabled && c.allows_grant("authorization_code"))
        .ok_or_else(|| Refusal::Here("unknown client".into()))?;
    // Exact match only (OAuth 2.0 Security BCP §4.1.3).
    let redirect_uri = get("redirect_uri")
        .filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
        .ok_or_else(|| Refusal::Here("the redirect_uri is not registered for this client".into()))?
        .to_owned();
    let back = |error: &'static str, description: &str| Refusal::Back {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: get("state").map(ToOwned::to_owned),
    };
    if get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    let challenge = get("code_challenge")
        .ok_or_else(|| back("invalid_request", "code_challenge is required (PKCE)"))?;
    if get("code_challenge_method") != Some("S256") {
        return Err(back(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(back("invalid_request", "code_challenge is malformed"));
    }
    let scopes = parse_scope(get("scope").unwrap_or(""))
        .map_err(|_| back("invalid_scope", "malformed scope"))?;
    let (audience, scopes) = resolve_grant(&client, &scopes, get("audience")).map_err(|e| {
        let code = match e {
            OAuthError::InvalidScope(_) => "invalid_scope",
            _ => "invalid_request",
        };
        back(code, &e.to_string())
    })?;
    Ok(Authorization {
        redirect_uri: redirect_uri.clone(),
        scopes,
        audience,
        state: get("state").map(ToOwned::to_owned),
        nonce: get("nonce").map(ToOwned::to_owned),
        code_challenge: challenge.to_owned(),
        params: PARAMS
            .iter()
            .filter_map(|p| get(p).map(|v| ((*p).to_owned(), v.to_owned())))
            .collect(),
        client,
    })
}

/// Creates the grant and its single-use code; returns where to send the user.
pub async fn issue_code(
    pool: &PgPool,
    users: &Users,
    oauth: &OAuthSettings,
    authorization: &Authorization,
    user_id: Uuid,
) -> Result<String, AuthError> {
    // Granted = asked ∩ what the user's roles allow (OIDC scopes always).
    let user_scopes = users.scopes(user_id).await?;
    let granted: Vec<&str> = authorization
        .scopes
        .iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) || user_scopes.contains(s))
        .map(String::as_str)
        .collect();
    let code = random_token().map_err(|e| AuthError::Hashing(e.to_string()))?;
    let grant = NewGrant {
        client_id: &authorization.client.client_id,
        user_id,
        scope: &granted.join(" "),
        audience: &authorization.audience,
        redirect_uri: &authorization.redirect_uri,
        code_challenge: &authorization.code_challenge,
        nonce: authorization.nonce.as_deref(),
    };
    let grant_id =
        grants::create_with_code(pool, &grant, &digest_secret(&code), oauth.code_ttl_secs).await?;
    tracing::info!(grant.id = %grant_id, client_id = %authorization.client.client_id, "authorization code issued");
    let mut pairs = vec![("code", code.as_str()), ("iss", oauth.issuer.as_str())];
    if let Some(s) = authorization.state.as_deref() {
        pairs.push(("state", s));
    }
    Ok(with_query(&authorization.redirect_uri, &pairs))
}

/// `uri` with `pairs` added to its query (a redirect back to the client).
pub fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}
