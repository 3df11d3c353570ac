//! OpenID Connect Discovery / RFC 8414 metadata and the JWKS (RFC 7517).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;

/// Every scope a token can carry: the OpenID Connect ones and each
/// service's (`<audience>:<scope>`; the audience of a token is the service
/// named before the colon, see `audience` in contracts/openapi/auth.yaml).
/// The contracts test (tests/api/contract.rs) checks that every scope a
/// contract mentions is listed here.
pub const SCOPES_SUPPORTED: &[&str] = &[
    "openid",
    "offline_access",
    "auth:admin",
    "payments:read",
    "payments:write",
    "payments:admin",
    "bookkeeping:read",
    "bookkeeping:write",
    "bookkeeping:admin",
    "communication:read",
    "communication:write",
    "communication:admin",
    "bookings:read",
    "bookings:write",
    "bookings:admin",
];

pub async fn configuration(State(state): State<AppState>) -> Json<Value> {
    let issuer = &state.oauth.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/authorize"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/oauth2/jwks"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SCOPES_SUPPORTED,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "preferred_username"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// Validators cache this; a short max-age keeps rotation visible even to
/// caches that do not refetch on an unknown `kid`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
