//! The admin API: clients, roles, user roles and keys. Behind
//! `RequireScope("auth:admin")` with tokens for audience `auth`, validated by
//! the same shared crate every service uses, against auth's own key ring.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform_auth_token::Authenticated;
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::instrument;
use uuid::Uuid;

use super::AppState;
use crate::clients::{self, Client, NewClient};
use crate::error::AuthError;
use crate::keys::KeyInfo;
use crate::roles::{self, Role};

/// A client with its secret, shown once.
#[derive(Debug, Serialize)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

#[instrument(skip_all, fields(client_id = %body.client_id, admin = %admin.0.sub))]
pub async fn create_client(
    State(state): State<AppState>,
    admin: Authenticated,
    Json(body): Json<NewClient>,
) -> Result<(StatusCode, Json<ClientWithSecret>), AuthError> {
    let (client, client_secret) = clients::create(&state.pool, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientWithSecret {
            client,
            client_secret,
        }),
    ))
}

pub async fn get_client(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Client>, AuthError> {
    clients::find(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or(AuthError::NotFound("client"))
}

/// Issues a new secret (the old one stops working). Shown once; only the
/// digest is kept.
#[instrument(skip_all, fields(client_id = %id, admin = %admin.0.sub))]
pub async fn issue_secret(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, AuthError> {
    let secret = clients::issue_secret(&state.pool, &id)
        .await?
        .ok_or(AuthError::NotFound("confidential client"))?;
    Ok(Json(json!({ "client_id": id, "client_secret": secret })))
}

#[instrument(skip_all, fields(client_id = %id, admin = %admin.0.sub))]
pub async fn disable_client(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, AuthError> {
    if !clients::disable(&state.pool, &id).await? {
        return Err(AuthError::NotFound("client"));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_roles(State(state): State<AppState>) -> Result<Json<Vec<Role>>, AuthError> {
    Ok(Json(roles::list(&state.pool).await?))
}

#[instrument(skip_all, fields(role = %name, admin = %admin.0.sub))]
pub async fn put_role(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Role>,
) -> Result<Json<Role>, AuthError> {
    Ok(Json(roles::save(&state.pool, &name, &body).await?))
}

#[derive(Debug, Deserialize)]
pub struct UserRoles {
    roles: Vec<String>,
}

#[instrument(skip_all, fields(user.id = %id, admin = %admin.0.sub))]
pub async fn put_user_roles(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(id): Path<String>,
    Json(body): Json<UserRoles>,
) -> Result<StatusCode, AuthError> {
    // Every user id is a UUID: any other id names no user (404 problem+json,
    // not the extractor's text/plain 400).
    let id = Uuid::parse_str(&id).map_err(|_| AuthError::NotFound("user"))?;
    state.users.set_roles(id, &body.roles).await?;
    tracing::info!("user roles set");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_keys(State(state): State<AppState>) -> Result<Json<Vec<KeyInfo>>, AuthError> {
    Ok(Json(state.keys.list().await?))
}

/// Publishes a new key now; it signs after the publish delay.
#[instrument(skip_all, fields(admin = %admin.0.sub))]
pub async fn rotate_keys(
    State(state): State<AppState>,
    admin: Authenticated,
) -> Result<(StatusCode, Json<KeyInfo>), AuthError> {
    Ok((StatusCode::CREATED, Json(state.keys.rotate().await?)))
}
