//! The token endpoint (RFC 6749 §3.2): reads the grant type's parameters
//! from the form, authenticates the client and hands both to
//! [`crate::tokens::Tokens::grant`].

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use super::{AppState, OAuthForm, no_store};
use crate::oauth_error::OAuthError;
use crate::tokens::TokenRequest;

#[instrument(skip_all, fields(grant_type, client_id))]
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
    tracing::Span::current().record("grant_type", grant_type);
    let client = super::introspection::authenticate(&state, &headers, &form).await?;
    let request = match grant_type {
        "client_credentials" => TokenRequest::ClientCredentials {
            scope: form.get("scope"),
            audience: form.get("audience").or_else(|| form.get("resource")),
        },
        "authorization_code" => TokenRequest::AuthorizationCode {
            code: form.get("code"),
            redirect_uri: form.get("redirect_uri"),
            verifier: form.get("code_verifier"),
        },
        "refresh_token" => TokenRequest::RefreshToken {
            token: form.get("refresh_token"),
            scope: form.get("scope"),
        },
        _ => return Err(OAuthError::UnsupportedGrantType),
    };
    let response = state.tokens.grant(&client, request).await?;
    metrics::counter!("auth_tokens_issued_total", "grant_type" => grant_type.to_owned())
        .increment(1);
    Ok(no_store(Json(response).into_response()))
}
