//! Roles: named sets of scopes that users hold (which user holds which is
//! in [`crate::users`]).

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::clients::parse_scope;
use crate::error::AuthError;

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow)]
pub struct Role {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    scopes: Vec<String>,
}

pub async fn list(pool: &PgPool) -> Result<Vec<Role>, sqlx::Error> {
    sqlx::query_as("SELECT name, description, scopes FROM roles ORDER BY name")
        .fetch_all(pool)
        .await
}

/// Creates or replaces role `name` with `role`'s description and scopes.
pub async fn save(pool: &PgPool, name: &str, role: &Role) -> Result<Role, AuthError> {
    for scope in &role.scopes {
        if parse_scope(scope).map(|s| s.len()).ok() != Some(1) {
            return Err(AuthError::invalid("scopes", "malformed scope"));
        }
    }
    let saved: Role = sqlx::query_as(
        "INSERT INTO roles (name, description, scopes) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET description = EXCLUDED.description, scopes = EXCLUDED.scopes
         RETURNING name, description, scopes",
    )
    .bind(name)
    .bind(&role.description)
    .bind(&role.scopes)
    .fetch_one(pool)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_check_violation() => {
            AuthError::invalid("name", "role names match ^[a-z][a-z0-9_-]{0,63}$")
        }
        _ => AuthError::Database(e),
    })?;
    tracing::info!("role saved");
    Ok(saved)
}
