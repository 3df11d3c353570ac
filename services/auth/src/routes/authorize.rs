//! The authorization endpoint (RFC 6749 §4.1.1) with PKCE S256 only
//! (RFC 7636; `plain` and a missing challenge are refused), and the login
//! form it shows.
//!
//! Errors about the client or the redirect URI are shown here and never
//! redirected (an attacker-chosen URI must not receive anything); every
//! other error goes back to the client's redirect URI (§4.1.2.1).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;
use tracing::instrument;
use uuid::Uuid;

use super::{AppState, OAuthForm};
use crate::clients::{self, Client, OIDC_SCOPES, parse_scope, resolve_grant};
use crate::crypto::{digest_secret, random_token};
use crate::grants::{self, NewGrant};
use crate::oauth_error::OAuthError;

/// A checked authorization request.
#[derive(Debug)]
struct Authorization {
    client: Client,
    redirect_uri: String,
    scopes: Vec<String>,
    audience: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    /// The request parameters, echoed into the login form.
    params: Vec<(String, String)>,
}

enum Refusal {
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

async fn check(
    state: &AppState,
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
    let client = clients::find(&state.pool, client_id)
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

/// `GET /oauth2/authorize`: check the request, show the login form.
#[instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match check(&state, &params).await {
        Ok(authorization) => login_page(&authorization, None, StatusCode::OK),
        Err(refusal) => refuse(refusal),
    }
}

/// `POST /oauth2/authorize`: the login form came back.
#[instrument(skip_all)]
pub async fn submit(
    State(state): State<AppState>,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let form = match form {
        Ok(form) => form.0,
        Err(error) => return refuse(Refusal::Here(error.to_string())),
    };
    let authorization = match check(&state, &form).await {
        Ok(a) => a,
        Err(refusal) => return refuse(refusal),
    };
    let username = form.get("username").map(String::as_str).unwrap_or("");
    let password = SecretString::from(form.get("password").cloned().unwrap_or_default());
    let user = match state.users.login(username, &password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return login_page(
                &authorization,
                Some("Invalid username or password."),
                StatusCode::UNAUTHORIZED,
            );
        }
        Err(error) => return error.into_response(),
    };
    match issue_code(&state, &authorization, user.id).await {
        Ok(location) => Redirect::to(&location).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Creates the grant and its single-use code; returns where to send the user.
async fn issue_code(
    state: &AppState,
    authorization: &Authorization,
    user_id: Uuid,
) -> Result<String, crate::error::AuthError> {
    // Granted = asked ∩ what the user's roles allow (OIDC scopes always).
    let user_scopes = state.users.scopes(user_id).await?;
    let granted: Vec<&str> = authorization
        .scopes
        .iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) || user_scopes.contains(s))
        .map(String::as_str)
        .collect();
    let code = random_token().map_err(|e| crate::error::AuthError::Hashing(e.to_string()))?;
    let grant = NewGrant {
        client_id: &authorization.client.client_id,
        user_id,
        scope: &granted.join(" "),
        audience: &authorization.audience,
        redirect_uri: &authorization.redirect_uri,
        code_challenge: &authorization.code_challenge,
        nonce: authorization.nonce.as_deref(),
    };
    let grant_id = grants::create_with_code(
        &state.pool,
        &grant,
        &digest_secret(&code),
        state.oauth.code_ttl_secs,
    )
    .await?;
    tracing::info!(grant.id = %grant_id, client_id = %authorization.client.client_id, "authorization code issued");
    let mut pairs = vec![
        ("code", code.as_str()),
        ("iss", state.oauth.issuer.as_str()),
    ];
    if let Some(s) = authorization.state.as_deref() {
        pairs.push(("state", s));
    }
    Ok(with_query(&authorization.redirect_uri, &pairs))
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(pairs);
            url.to_string()
        }
        Err(_) => uri.to_owned(),
    }
}

fn refuse(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Here(message) => {
            let body = format!(
                "<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p>{}</p>",
                escape(&message)
            );
            secure(StatusCode::BAD_REQUEST, body)
        }
        Refusal::Back {
            redirect_uri,
            error,
            description,
            state,
        } => {
            let mut pairs = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = state.as_deref() {
                pairs.push(("state", s));
            }
            Redirect::to(&with_query(&redirect_uri, &pairs)).into_response()
        }
    }
}

fn login_page(authorization: &Authorization, error: Option<&str>, status: StatusCode) -> Response {
    let hidden: String = authorization
        .params
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>Sign in</title>\
         <h1>Sign in to {}</h1>{error}\
         <form method=\"post\" action=\"/oauth2/authorize\">{hidden}\
         <label>Username <input name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form>",
        escape(&authorization.client.name)
    );
    secure(status, body)
}

/// No caching, no framing (clickjacking), no scripts.
fn secure(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    response
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
