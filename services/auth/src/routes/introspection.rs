//! Introspection (RFC 7662) and revocation (RFC 7009).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tracing::instrument;

use super::{AppState, OAuthForm, no_store};
use crate::clients::{Client, ClientCredentials};
use crate::oauth_error::OAuthError;

/// Only authenticated confidential clients may introspect: the answer
/// describes other parties' tokens.
#[instrument(skip_all, fields(client_id))]
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client = authenticate(&state, &headers, &form).await?;
    if client.is_public {
        return Err(OAuthError::UnauthorizedClient(
            "public clients cannot introspect".into(),
        ));
    }
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let body = state.tokens.introspect(token).await?;
    Ok(no_store(Json(body).into_response()))
}

/// 200 with an empty body whatever the token was (RFC 7009 §2.2).
#[instrument(skip_all, fields(client_id))]
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    let client = authenticate(&state, &headers, &form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    state.tokens.revoke(&client.client_id, token).await?;
    Ok(no_store(().into_response()))
}

/// The calling client, authenticated by HTTP Basic or form credentials, its
/// id recorded on the current span.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Client, OAuthError> {
    let credentials =
        ClientCredentials::from_request(headers, form.get("client_id"), form.get("client_secret"))?;
    tracing::Span::current().record("client_id", credentials.client_id.as_str());
    credentials.authenticate(&state.pool).await
}
