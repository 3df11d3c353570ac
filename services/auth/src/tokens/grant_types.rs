//! The token endpoint's grant types (RFC 6749 §4): client credentials,
//! authorization code with PKCE, refresh token with rotation and reuse
//! detection — what each checks before [`Tokens`] issues tokens.

use time::OffsetDateTime;

use super::{Subject, TokenResponse, Tokens};
use crate::clients::{Client, OIDC_SCOPES, parse_scope, resolve_grant};
use crate::crypto::{constant_time_eq, digest_secret, pkce_s256};
use crate::grants::{self, Redemption};
use crate::oauth_error::OAuthError;
use crate::users::role_scopes;

/// What a client exchanges at the token endpoint: the parameters of its
/// grant type as they came (`None`: absent or empty), checked by
/// [`Tokens::grant`] once it knows the client may use the grant type.
#[derive(Debug)]
pub enum TokenRequest<'a> {
    /// Service to service (RFC 6749 §4.4).
    ClientCredentials {
        scope: Option<&'a str>,
        /// `audience`, or RFC 8707 `resource`.
        audience: Option<&'a str>,
    },
    /// A code from the authorization endpoint with its PKCE verifier
    /// (RFC 6749 §4.1.3, RFC 7636 §4.5).
    AuthorizationCode {
        code: Option<&'a str>,
        redirect_uri: Option<&'a str>,
        verifier: Option<&'a str>,
    },
    /// A refresh token, optionally narrowed to `scope` (RFC 6749 §6).
    RefreshToken {
        token: Option<&'a str>,
        scope: Option<&'a str>,
    },
}

impl TokenRequest<'_> {
    pub fn grant_type(&self) -> &'static str {
        match self {
            Self::ClientCredentials { .. } => "client_credentials",
            Self::AuthorizationCode { .. } => "authorization_code",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }
}

fn required<'a>(value: Option<&'a str>, message: &'static str) -> Result<&'a str, OAuthError> {
    value.ok_or_else(|| OAuthError::invalid_request(message))
}

/// RFC 7636 §4.1: 43–128 unreserved characters.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Tokens {
    /// Issues what `request` asks for to an authenticated `client`, if the
    /// client may use that grant type.
    pub async fn grant(
        &self,
        client: &Client,
        request: TokenRequest<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let grant_type = request.grant_type();
        if !client.allows_grant(grant_type) {
            return Err(OAuthError::UnauthorizedClient(format!(
                "the client may not use {grant_type}"
            )));
        }
        match request {
            TokenRequest::ClientCredentials { scope, audience } => {
                self.client_credentials(client, scope.unwrap_or(""), audience)
            }
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                verifier,
            } => {
                let code = required(code, "code is required")?;
                let redirect_uri = required(redirect_uri, "redirect_uri is required")?;
                let verifier = required(verifier, "code_verifier is required (PKCE)")?;
                if !valid_verifier(verifier) {
                    return Err(OAuthError::invalid_request("code_verifier is malformed"));
                }
                self.authorization_code(client, code, redirect_uri, verifier)
                    .await
            }
            TokenRequest::RefreshToken { token, scope } => {
                let token = required(token, "refresh_token is required")?;
                self.refresh_token(client, token, scope).await
            }
        }
    }

    /// No user, no refresh token (RFC 6749 §4.4.3), nothing stored — one
    /// indexed read and one signature.
    fn client_credentials(
        &self,
        client: &Client,
        scope: &str,
        audience: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let requested = parse_scope(scope)?;
        let (audience, scopes) = resolve_grant(client, &requested, audience)?;
        self.access_token(&Subject {
            sub: client.client_id.clone(),
            client_id: &client.client_id,
            audience: &audience,
            scope: &scopes.join(" "),
            grant_id: None,
        })
    }

    async fn authorization_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid = || OAuthError::invalid_grant("the code is invalid");
        let mut tx = platform_db::begin(&self.pool).await?;
        let code = match grants::redeem_code(&mut tx, &digest_secret(code)).await? {
            Redemption::Spent(code) => code,
            // A second redemption: the code leaked. Revoke what the first
            // one issued (RFC 6749 §4.1.2, OAuth 2.0 Security BCP §4.5) —
            // but only when the client the code was issued to presents it,
            // or any client holding a leaked code could revoke a grant.
            Redemption::SpentBefore {
                grant_id,
                client_id,
            } if client_id == client.client_id => {
                grants::revoke(&mut tx, grant_id, "authorization code redeemed twice").await?;
                tx.commit().await?;
                return Err(invalid());
            }
            Redemption::SpentBefore { .. } | Redemption::Unknown => return Err(invalid()),
        };
        // The code is spent whatever the checks below say.
        tx.commit().await?;
        let pkce_ok = constant_time_eq(
            pkce_s256(verifier).as_bytes(),
            code.code_challenge.as_bytes(),
        );
        if code.client_id != client.client_id
            || code.redirect_uri != redirect_uri
            || code.expires_at <= OffsetDateTime::now_utc()
            || !pkce_ok
        {
            return Err(invalid());
        }
        let grant = grants::find_active(&self.pool, code.grant_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("the grant was revoked"))?;
        let mut response = self.access_token(&Subject {
            sub: grant.user_id.to_string(),
            client_id: &client.client_id,
            audience: &grant.audience,
            scope: &grant.scope,
            grant_id: Some(code.grant_id),
        })?;
        if grant.scope.split(' ').any(|s| s == "openid") {
            response.id_token = Some(self.id_token(
                grant.user_id,
                grant.username.as_deref(),
                &client.client_id,
                code.nonce.as_deref(),
                code.auth_time.unix_timestamp(),
            )?);
        }
        if client.allows_grant("refresh_token") {
            let mut conn = self.pool.acquire().await?;
            response.refresh_token = Some(self.new_refresh_token(&mut conn, code.grant_id).await?);
        }
        Ok(response)
    }

    /// Rotation: every use returns a new refresh token and retires the old
    /// one. Presenting a retired one again means two parties hold the
    /// family: the whole grant is revoked — except within the configured
    /// grace for the most recently retired token (a client retrying a lost
    /// response), which gets a fresh pair instead while the token issued in
    /// between is retired.
    async fn refresh_token(
        &self,
        client: &Client,
        presented: &str,
        requested_scope: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let digest = digest_secret(presented);
        let invalid = || OAuthError::invalid_grant("the refresh token is invalid");
        let mut tx = platform_db::begin(&self.pool).await?;
        let Some(token) = grants::lock_by_refresh_token(&mut tx, &digest).await? else {
            return Err(invalid());
        };
        if token.client_id != client.client_id || token.revoked_at.is_some() {
            return Err(invalid());
        }
        if token.expires_at <= OffsetDateTime::now_utc() {
            return Err(invalid());
        }
        let grant_id = token.grant_id;
        if let Some(rotated_at) = token.rotated_at {
            let grace_secs =
                f64::from(u32::try_from(self.settings.refresh_reuse_grace_secs).unwrap_or(0));
            let retry =
                grants::is_latest_rotation_within(&mut tx, grant_id, rotated_at, grace_secs)
                    .await?;
            if !retry {
                grants::revoke(&mut tx, grant_id, "rotated refresh token reused").await?;
                tx.commit().await?;
                return Err(invalid());
            }
            // The token issued by the first use is superseded by this one.
            grants::retire_current_refresh_token(&mut tx, grant_id).await?;
        } else {
            grants::retire_refresh_token(&mut tx, &digest).await?;
        }
        // The grant's scopes are what the user's roles allowed at sign-in;
        // roles change. Every refresh grants (originally granted) ∩ (what
        // the roles and the client allow now). A grant left with none of
        // its service scopes is over: revoked, like a reused token (ADR
        // 0013).
        let role_scopes = role_scopes(&mut *tx, token.user_id).await?;
        let Some(granted) = current_scopes(&token.scope, &role_scopes, &client.allowed_scopes)
        else {
            grants::revoke(
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
        // Down-scoping is allowed (RFC 6749 §6); widening is not. Refused,
        // the transaction rolls back and the presented token stays usable.
        let scope = match requested_scope {
            Some(requested) => {
                let requested = parse_scope(requested)?;
                if requested.iter().any(|s| !granted.contains(&s.as_str())) {
                    return Err(OAuthError::invalid_scope("the scope exceeds the grant"));
                }
                requested.join(" ")
            }
            None => granted.join(" "),
        };
        let refresh = self.new_refresh_token(&mut tx, grant_id).await?;
        tx.commit().await?;
        let mut response = self.access_token(&Subject {
            sub: token.user_id.to_string(),
            client_id: &client.client_id,
            audience: &token.audience,
            scope: &scope,
            grant_id: Some(grant_id),
        })?;
        response.refresh_token = Some(refresh);
        Ok(response)
    }
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
