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
use crate::clients::{self, Client, parse_scope};
use crate::crypto::{digest_secret, random_token};
use crate::error::{AuthError, conflict_on_unique};
use crate::keys::KeyInfo;

#[derive(Debug, Deserialize)]
pub struct NewClient {
    client_id: String,
    name: String,
    #[serde(default)]
    public: bool,
    grant_types: Vec<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    allowed_scopes: Vec<String>,
    #[serde(default)]
    allowed_audiences: Vec<String>,
}

/// A client with its secret, shown once.
#[derive(Debug, Serialize)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    client: Client,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// Whether `id` has the shape of a UUID (32 hex digits, hyphens aside).
/// Users' `sub` is their UUID and a client-credentials token's `sub` is the
/// client id: keeping UUID-shaped ids away from clients keeps the two
/// namespaces disjoint, so a `sub` never names both a user and a client.
/// The database enforces the same rule (migration 20261126100003).
pub fn is_uuid_shaped(id: &str) -> bool {
    let digits: Vec<char> = id.chars().filter(|c| *c != '-').collect();
    digits.len() == 32 && digits.iter().all(char::is_ascii_hexdigit)
}

fn validate(new: &NewClient) -> Result<(), AuthError> {
    const GRANTS: [&str; 3] = ["client_credentials", "authorization_code", "refresh_token"];
    if is_uuid_shaped(&new.client_id) {
        return Err(AuthError::invalid(
            "client_id",
            "client_id must not look like a UUID: UUIDs name users",
        ));
    }
    if new.grant_types.is_empty()
        || new
            .grant_types
            .iter()
            .any(|g| !GRANTS.contains(&g.as_str()))
    {
        return Err(AuthError::invalid(
            "grant_types",
            "unknown or no grant type",
        ));
    }
    if new.public && new.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(AuthError::invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    for uri in &new.redirect_uris {
        let parsed = url::Url::parse(uri)
            .map_err(|_| AuthError::invalid("redirect_uris", "not an absolute URI"))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
        if parsed.fragment().is_some() || (parsed.scheme() != "https" && !loopback) {
            return Err(AuthError::invalid(
                "redirect_uris",
                "https (or http on loopback) without fragment",
            ));
        }
    }
    if new.grant_types.iter().any(|g| g == "authorization_code") && new.redirect_uris.is_empty() {
        return Err(AuthError::invalid(
            "redirect_uris",
            "authorization_code needs a redirect URI",
        ));
    }
    for scope in &new.allowed_scopes {
        if parse_scope(scope).map(|s| s.len()).ok() != Some(1) {
            return Err(AuthError::invalid("allowed_scopes", "malformed scope"));
        }
    }
    Ok(())
}

#[instrument(skip_all, fields(client_id = %body.client_id, admin = %admin.0.sub))]
pub async fn create_client(
    State(state): State<AppState>,
    admin: Authenticated,
    Json(body): Json<NewClient>,
) -> Result<(StatusCode, Json<ClientWithSecret>), AuthError> {
    validate(&body)?;
    let secret = if body.public {
        None
    } else {
        Some(random_token().map_err(|e| AuthError::Hashing(e.to_string()))?)
    };
    sqlx::query(
        "INSERT INTO clients (client_id, name, secret_digest, is_public, grant_types, redirect_uris,
                              allowed_scopes, allowed_audiences)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&body.client_id)
    .bind(&body.name)
    .bind(secret.as_deref().map(digest_secret))
    .bind(body.public)
    .bind(&body.grant_types)
    .bind(&body.redirect_uris)
    .bind(&body.allowed_scopes)
    .bind(&body.allowed_audiences)
    .execute(&state.pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_check_violation() => AuthError::invalid(
            "client_id",
            "client_id must match ^[a-z][a-z0-9_.-]{1,63}$ and not look like a UUID",
        ),
        _ => conflict_on_unique("client")(e),
    })?;
    tracing::info!("client created");
    let client = clients::find(&state.pool, &body.client_id)
        .await?
        .ok_or(AuthError::NotFound("client"))?;
    Ok((
        StatusCode::CREATED,
        Json(ClientWithSecret {
            client,
            client_secret: secret,
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
    let secret = random_token().map_err(|e| AuthError::Hashing(e.to_string()))?;
    let updated =
        sqlx::query("UPDATE clients SET secret_digest = $2 WHERE client_id = $1 AND NOT is_public")
            .bind(&id)
            .bind(digest_secret(&secret))
            .execute(&state.pool)
            .await?;
    if updated.rows_affected() == 0 {
        return Err(AuthError::NotFound("confidential client"));
    }
    tracing::info!("client secret issued");
    Ok(Json(json!({ "client_id": id, "client_secret": secret })))
}

#[instrument(skip_all, fields(client_id = %id, admin = %admin.0.sub))]
pub async fn disable_client(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, AuthError> {
    let updated = sqlx::query("UPDATE clients SET disabled = true WHERE client_id = $1")
        .bind(&id)
        .execute(&state.pool)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(AuthError::NotFound("client"));
    }
    tracing::info!("client disabled");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct Role {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
}

pub async fn list_roles(State(state): State<AppState>) -> Result<Json<Vec<Role>>, AuthError> {
    Ok(Json(
        sqlx::query_as("SELECT name, description, scopes FROM roles ORDER BY name")
            .fetch_all(&state.pool)
            .await?,
    ))
}

#[instrument(skip_all, fields(role = %name, admin = %admin.0.sub))]
pub async fn put_role(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(name): Path<String>,
    Json(body): Json<Role>,
) -> Result<Json<Role>, AuthError> {
    for scope in &body.scopes {
        if parse_scope(scope).map(|s| s.len()).ok() != Some(1) {
            return Err(AuthError::invalid("scopes", "malformed scope"));
        }
    }
    let role: Role = sqlx::query_as(
        "INSERT INTO roles (name, description, scopes) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, scopes = EXCLUDED.scopes
         RETURNING name, description, scopes",
    )
    .bind(&name)
    .bind(&body.description)
    .bind(&body.scopes)
    .fetch_one(&state.pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_check_violation() => {
            AuthError::invalid("name", "role names match ^[a-z][a-z0-9_-]{0,63}$")
        }
        _ => AuthError::Database(e),
    })?;
    tracing::info!("role saved");
    Ok(Json(role))
}

#[derive(Debug, Deserialize)]
pub struct UserRoles {
    roles: Vec<String>,
}

#[instrument(skip_all, fields(user.id = %id, admin = %admin.0.sub))]
pub async fn put_user_roles(
    State(state): State<AppState>,
    admin: Authenticated,
    Path(id): Path<Uuid>,
    Json(body): Json<UserRoles>,
) -> Result<StatusCode, AuthError> {
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

#[cfg(test)]
mod tests {
    use super::is_uuid_shaped;

    #[test]
    fn uuid_shaped_client_ids_are_recognised_in_every_spelling() {
        let user = uuid::Uuid::now_v7();
        assert!(is_uuid_shaped(&user.to_string()));
        assert!(is_uuid_shaped(&user.simple().to_string()));
        assert!(is_uuid_shaped("a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5"));
        assert!(is_uuid_shaped("a0b1c2d3e4f5-a6b7c8d9e0f1a2b3c4d5"));
        assert!(!is_uuid_shaped("payments"));
        assert!(!is_uuid_shaped("a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d"));
        assert!(!is_uuid_shaped("shop-a0b1c2d3-e4f5-a6b7-c8d9-e0f1a2b3c4d5"));
    }
}
