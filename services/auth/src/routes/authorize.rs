//! `GET`/`POST /oauth2/authorize`: the login form, and the answers of the
//! authorization endpoint — a refusal shown here or sent back to the
//! client, or the redirect with the code. The request's checks and the code
//! are [`crate::authorization`].

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use secrecy::SecretString;
use tracing::instrument;

use super::{AppState, OAuthForm};
use crate::authorization::{self, Authorization, Refusal, with_query};
use crate::oauth_error::OAuthError;

/// `GET /oauth2/authorize`: check the request, show the login form.
#[instrument(skip_all)]
pub async fn show(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match authorization::check(&state.pool, &params).await {
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
    let authorization = match authorization::check(&state.pool, &form).await {
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
    match authorization::issue_code(
        &state.pool,
        &state.users,
        &state.oauth,
        &authorization,
        user.id,
    )
    .await
    {
        Ok(location) => Redirect::to(&location).into_response(),
        Err(error) => error.into_response(),
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
