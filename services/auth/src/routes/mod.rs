//! HTTP routes (contracts/openapi/auth.yaml): OAuth/OIDC endpoints answering
//! RFC 6749 errors, and the admin and registration API answering
//! problem+json.

mod admin;
mod authorize;
mod discovery;
mod introspection;
mod token;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::routing::{get, post, put};
use platform_auth_token::{RequireScope, Validator};
use sqlx::PgPool;

use crate::keys::KeyRing;
use crate::oauth_error::OAuthError;
use crate::settings::OAuthSettings;
use crate::tokens::Tokens;
use crate::users::Users;

/// This service's contract, served at `GET /openapi.yaml`
/// (`platform_server::openapi`).
pub const OPENAPI: &str = include_str!("../../../../contracts/openapi/auth.yaml");
/// The scope that opens the admin API (audience `auth`).
pub const ADMIN_SCOPE: &str = "auth:admin";

#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Arc<KeyRing>,
    pub tokens: Tokens,
    pub users: Users,
    pub oauth: Arc<OAuthSettings>,
}

pub fn router(state: AppState, admin: &Validator) -> Router {
    let admin_api = Router::new()
        .route("/admin/clients", post(admin::create_client))
        .route("/admin/clients/{id}", get(admin::get_client))
        .route("/admin/clients/{id}/secret", post(admin::issue_secret))
        .route("/admin/clients/{id}/disable", post(admin::disable_client))
        .route("/admin/roles", get(admin::list_roles))
        .route("/admin/roles/{name}", put(admin::put_role))
        .route("/admin/users/{id}/roles", put(admin::put_user_roles))
        .route("/admin/keys", get(admin::list_keys))
        .route("/admin/keys/rotate", post(admin::rotate_keys))
        .route_layer(RequireScope::new(admin, ADMIN_SCOPE));
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::configuration),
        )
        .route("/oauth2/jwks", get(discovery::jwks))
        .route(
            "/oauth2/authorize",
            get(authorize::show).post(authorize::submit),
        )
        .route("/oauth2/token", post(token::token))
        .route("/oauth2/introspect", post(introspection::introspect))
        .route("/oauth2/revoke", post(introspection::revoke))
        .route("/v1/users", post(users::register))
        .merge(admin_api)
        .merge(platform_server::openapi::routes(OPENAPI))
        .with_state(state)
}

/// An `application/x-www-form-urlencoded` body whose rejections are RFC 6749
/// errors, and in which a repeated parameter is an error (RFC 6749 §3.1).
#[derive(Debug)]
pub struct OAuthForm(pub HashMap<String, String>);

impl OAuthForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form_type {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
        if body.len() > 16 * 1024 {
            return Err(OAuthError::invalid_request("the body is too large"));
        }
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(&body) {
            // PostgreSQL cannot store or compare a NUL in text: a 5xx from
            // the database otherwise (issue #16, ADR 0039).
            if name.contains('\0') || value.contains('\0') {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} holds a NUL character",
                    name.replace('\0', "\\0")
                )));
            }
            if params
                .insert(name.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
        }
        Ok(Self(params))
    }
}

/// Responses carrying tokens must not be cached (RFC 6749 §5.1).
pub fn no_store(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    response
}
