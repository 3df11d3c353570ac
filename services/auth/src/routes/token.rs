//! The token endpoint (RFC 6749 §3.2): client credentials, authorization
//! code with PKCE, refresh token with rotation and reuse detection.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

use super::{AppState, OAuthForm, no_store};
use crate::clients::{Client, OIDC_SCOPES, parse_scope, resolve_grant};
use crate::crypto::{constant_time_eq, digest_secret, pkce_s256};
use crate::oauth_error::OAuthError;
use crate::tokens::{Subject, TokenResponse};
use crate::users::role_scopes;

#[instrument(skip_all, fields(grant_type, client_id))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let span = tracing::Span::current();
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    span.record("grant_type", grant_type);
    let client = super::introspection::authenticate(&state, &headers, &form).await?;
    let response = match grant_type {
        "client_credentials" => client_credentials(&state, &client, &form)?,
        "authorization_code" => authorization_code(&state, &client, &form).await?,
        "refresh_token" => refresh_token(&state, &client, &form).await?,
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    metrics::counter!("auth_tokens_issued_total", "grant_type" => grant_type.to_owned())
        .increment(1);
    Ok(no_store(Json(response).into_response()))
}

fn require_grant(client: &Client, grant_type: &str) -> Result<(), OAuthError> {
    if client.allows_grant(grant_type) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "the client may not use {grant_type}"
        )))
    }
}

/// Service to service: no user, no refresh token (RFC 6749 §4.4.3), nothing
/// stored — one indexed read and one signature.
fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "client_credentials")?;
    let requested = parse_scope(form.get("scope").unwrap_or(""))?;
    let audience = form.get("audience").or_else(|| form.get("resource"));
    let (audience, scopes) = resolve_grant(client, &requested, audience)?;
    state.tokens.access_token(&Subject {
        sub: client.client_id.clone(),
        client_id: &client.client_id,
        audience: &audience,
        scope: &scopes.join(" "),
        grant_id: None,
    })
}

/// RFC 7636 §4.1: 43–128 unreserved characters.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

type CodeRow = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
);

async fn authorization_code(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "authorization_code")?;
    let code = form
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = form
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::invalid_request("redirect_uri is required"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    if !valid_verifier(verifier) {
        return Err(OAuthError::invalid_request("code_verifier is malformed"));
    }
    let digest = digest_secret(code);
    let mut tx = state.pool.begin().await?;
    // Single use: whoever flips redeemed_at first gets the code.
    let redeemed: Option<CodeRow> = sqlx::query_as(
        "UPDATE authorization_codes SET redeemed_at = now()
         WHERE code_digest = $1 AND redeemed_at IS NULL
         RETURNING grant_id, client_id, redirect_uri, code_challenge, nonce, auth_time, expires_at",
    )
    .bind(&digest)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((grant_id, code_client, code_redirect, challenge, nonce, auth_time, expires_at)) =
        redeemed
    else {
        // A second redemption: the code leaked. Revoke what the first one
        // issued (RFC 6749 §4.1.2, OAuth 2.0 Security BCP §4.5).
        let reused: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT grant_id, client_id FROM authorization_codes WHERE code_digest = $1",
        )
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await?;
        // Only the client the code was issued to may trigger the revocation;
        // otherwise any client holding a leaked code could revoke a grant.
        if let Some((grant_id, code_client)) = reused
            && code_client == client.client_id
        {
            state
                .tokens
                .revoke_grant(&mut tx, grant_id, "authorization code redeemed twice")
                .await?;
            tx.commit().await?;
        }
        return Err(OAuthError::invalid_grant("the code is invalid"));
    };
    // The code is spent whatever the checks below say.
    tx.commit().await?;
    let pkce_ok = constant_time_eq(pkce_s256(verifier).as_bytes(), challenge.as_bytes());
    if code_client != client.client_id
        || code_redirect != redirect_uri
        || expires_at <= OffsetDateTime::now_utc()
        || !pkce_ok
    {
        return Err(OAuthError::invalid_grant("the code is invalid"));
    }
    let grant: Option<(Uuid, String, String, Option<String>)> = sqlx::query_as(
        "SELECT g.user_id, g.scope, g.audience, u.username
         FROM grants g JOIN users u ON u.id = g.user_id
         WHERE g.id = $1 AND g.revoked_at IS NULL",
    )
    .bind(grant_id)
    .fetch_optional(&state.pool)
    .await?;
    let (user_id, scope, audience, username) =
        grant.ok_or_else(|| OAuthError::invalid_grant("the grant was revoked"))?;
    let mut response = state.tokens.access_token(&Subject {
        sub: user_id.to_string(),
        client_id: &client.client_id,
        audience: &audience,
        scope: &scope,
        grant_id: Some(grant_id),
    })?;
    if scope.split(' ').any(|s| s == "openid") {
        response.id_token = Some(state.tokens.id_token(
            user_id,
            username.as_deref(),
            &client.client_id,
            nonce.as_deref(),
            auth_time.unix_timestamp(),
        )?);
    }
    if client.allows_grant("refresh_token") {
        let mut conn = state.pool.acquire().await?;
        response.refresh_token = Some(state.tokens.new_refresh_token(&mut conn, grant_id).await?);
    }
    Ok(response)
}

type RefreshRow = (
    Uuid,
    Option<OffsetDateTime>,
    OffsetDateTime,
    String,
    Uuid,
    String,
    String,
    Option<OffsetDateTime>,
);

/// Rotation: every use returns a new refresh token and retires the old one.
/// Presenting a retired one again means two parties hold the family: the
/// whole grant is revoked — except within the configured grace for the most
/// recently retired token (a client retrying a lost response), which gets a
/// fresh pair instead while the token issued in between is retired.
async fn refresh_token(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    require_grant(client, "refresh_token")?;
    let presented = form
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let digest = digest_secret(presented);
    let mut tx = state.pool.begin().await?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT rt.grant_id, rt.rotated_at, rt.expires_at, g.client_id, g.user_id, g.scope,
                g.audience, g.revoked_at
         FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
         WHERE rt.token_digest = $1
         FOR UPDATE OF g",
    )
    .bind(&digest)
    .fetch_optional(&mut *tx)
    .await?;
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid");
    let Some((grant_id, rotated_at, expires_at, grant_client, user_id, scope, audience, revoked)) =
        row
    else {
        return Err(invalid());
    };
    if grant_client != client.client_id || revoked.is_some() {
        return Err(invalid());
    }
    let now = OffsetDateTime::now_utc();
    if expires_at <= now {
        return Err(invalid());
    }
    if let Some(rotated_at) = rotated_at {
        // The grace is measured on the database's clock, the one that set
        // `rotated_at`: an application clock behind it must not widen it.
        let grace_secs =
            f64::from(u32::try_from(state.oauth.refresh_reuse_grace_secs).unwrap_or(0));
        let (latest_rotation, within_grace): (Option<OffsetDateTime>, bool) = sqlx::query_as(
            "SELECT max(rotated_at), coalesce(now() - $2::timestamptz <= make_interval(secs => $3), false)
               FROM refresh_tokens WHERE grant_id = $1",
        )
        .bind(grant_id)
        .bind(rotated_at)
        .bind(grace_secs)
        .fetch_one(&mut *tx)
        .await?;
        let retry = within_grace && latest_rotation == Some(rotated_at);
        if !retry {
            state
                .tokens
                .revoke_grant(&mut tx, grant_id, "rotated refresh token reused")
                .await?;
            tx.commit().await?;
            return Err(invalid());
        }
        // The token issued by the first use is superseded by this one.
        sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = now() WHERE grant_id = $1 AND rotated_at IS NULL",
        )
        .bind(grant_id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE token_digest = $1")
            .bind(&digest)
            .execute(&mut *tx)
            .await?;
    }
    // The grant's scopes are what the user's roles allowed at sign-in; roles
    // change. Every refresh grants (originally granted) ∩ (what the roles
    // and the client allow now). A grant left with none of its service
    // scopes is over: revoked, like a reused token (ADR 0013).
    let role_scopes = role_scopes(&mut *tx, user_id).await?;
    let Some(granted) = current_scopes(&scope, &role_scopes, &client.allowed_scopes) else {
        state
            .tokens
            .revoke_grant(
                &mut tx,
                grant_id,
                "the user's roles no longer allow the grant",
            )
            .await?;
        tx.commit().await?;
        return Err(OAuthError::invalid_grant(
            "the user's roles no longer allow this grant",
        ));
    };
    // Down-scoping is allowed (RFC 6749 §6); widening is not.
    let scope = match form.get("scope") {
        Some(requested) => {
            let requested = parse_scope(requested)?;
            if requested.iter().any(|s| !granted.contains(&s.as_str())) {
                return Err(OAuthError::invalid_scope("the scope exceeds the grant"));
            }
            requested.join(" ")
        }
        None => granted.join(" "),
    };
    let refresh = state.tokens.new_refresh_token(&mut tx, grant_id).await?;
    tx.commit().await?;
    let mut response = state.tokens.access_token(&Subject {
        sub: user_id.to_string(),
        client_id: &client.client_id,
        audience: &audience,
        scope: &scope,
        grant_id: Some(grant_id),
    })?;
    response.refresh_token = Some(refresh);
    Ok(response)
}

/// The scopes of a grant that still hold: `granted` (space-separated, as
/// stored) narrowed to the user's current `role_scopes` and the client's
/// current `client_scopes`; OpenID Connect's own scopes are not the roles'
/// to give and stay. `None` when the grant had service scopes and none is
/// left.
fn current_scopes<'a>(
    granted: &'a str,
    role_scopes: &[String],
    client_scopes: &[String],
) -> Option<Vec<&'a str>> {
    let original: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
    let oidc = |s: &str| OIDC_SCOPES.contains(&s);
    let holds = |s: &str| {
        oidc(s) || (role_scopes.iter().any(|r| r == s) && client_scopes.iter().any(|c| c == s))
    };
    let current: Vec<&str> = original.iter().copied().filter(|s| holds(s)).collect();
    let had_service_scopes = original.iter().any(|s| !oidc(s));
    let has_service_scopes = current.iter().any(|s| !oidc(s));
    (!had_service_scopes || has_service_scopes).then_some(current)
}

#[cfg(test)]
mod tests {
    use super::current_scopes;

    fn owned(scopes: &[&str]) -> Vec<String> {
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_refresh_keeps_only_what_roles_and_client_still_allow() {
        let client = owned(&["payments:read", "payments:write"]);
        let grant = "openid payments:read payments:write";
        assert_eq!(
            current_scopes(grant, &owned(&["payments:read", "payments:write"]), &client),
            Some(vec!["openid", "payments:read", "payments:write"])
        );
        assert_eq!(
            current_scopes(
                grant,
                &owned(&["payments:read", "bookkeeping:read"]),
                &client
            ),
            Some(vec!["openid", "payments:read"]),
            "narrowed to the roles, never widened"
        );
        assert_eq!(
            current_scopes(
                grant,
                &owned(&["payments:read"]),
                &owned(&["payments:write"])
            ),
            None,
            "the client lost the only scope the roles still give"
        );
        assert_eq!(current_scopes(grant, &[], &client), None);
        assert_eq!(
            current_scopes("openid", &[], &client),
            Some(vec!["openid"]),
            "a sign-in-only grant needs no role"
        );
    }
}
