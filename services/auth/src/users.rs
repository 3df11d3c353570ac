//! End users: registration, login for the authorization endpoint, roles.
//!
//! Lockout holds under concurrency because an attempt is *counted before the
//! password is checked*, in one atomic UPDATE that also refuses when the
//! limit is reached: N parallel guesses reserve at most the remaining
//! attempts, the rest are refused without their password being looked at.
//! A correct password resets the count.

use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use crate::error::{AuthError, conflict_on_unique};
use crate::passwords::{PasswordHasher, Verified};
use crate::settings::PasswordSettings;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
}

/// Lower-cased, 3–64 characters of `[a-z0-9._@-]`, starting alphanumeric.
pub fn parse_username(raw: &str) -> Result<String, AuthError> {
    let name = raw.trim().to_lowercase();
    let valid = (3..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(c));
    if valid {
        Ok(name)
    } else {
        Err(AuthError::invalid(
            "username",
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '@', '-'",
        ))
    }
}

#[derive(Debug, Clone)]
pub struct Users {
    pool: PgPool,
    hasher: PasswordHasher,
    settings: PasswordSettings,
}

impl Users {
    pub fn new(pool: PgPool, hasher: PasswordHasher, settings: PasswordSettings) -> Self {
        Self {
            pool,
            hasher,
            settings,
        }
    }

    #[instrument(skip_all)]
    pub async fn register(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<User, AuthError> {
        use secrecy::ExposeSecret;
        let username = parse_username(username)?;
        let length = password.expose_secret().chars().count();
        if length < self.settings.min_length || length > 256 {
            return Err(AuthError::invalid(
                "password",
                format!(
                    "password must be {}-256 characters",
                    self.settings.min_length
                ),
            ));
        }
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO users (id, username, password_hash) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(&username)
            .bind(hash)
            .execute(&self.pool)
            .await
            .map_err(conflict_on_unique("username"))?;
        tracing::info!(user.id = %id, "user registered");
        Ok(User { id, username })
    }

    /// `Some(user)` for the right password of an unlocked account; `None`
    /// for every failure alike (unknown, wrong, locked).
    #[instrument(skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<User>, AuthError> {
        let Ok(username) = parse_username(username) else {
            self.verify_dummy(password).await?;
            return Ok(None);
        };
        let reserved: Option<(Uuid, String)> = sqlx::query_as(
            "UPDATE users SET
                 failed_attempts = CASE WHEN locked_until <= now() THEN 1 ELSE failed_attempts + 1 END,
                 locked_until = CASE
                     WHEN (CASE WHEN locked_until <= now() THEN 1 ELSE failed_attempts + 1 END) >= $2
                     THEN now() + make_interval(secs => $3)
                     ELSE NULL END
             WHERE username = $1
               AND ((locked_until IS NULL AND failed_attempts < $2) OR locked_until <= now())
             RETURNING id, password_hash",
        )
        .bind(&username)
        .bind(self.settings.max_failed_attempts)
        .bind(self.settings.lockout_secs as f64)
        .fetch_optional(&self.pool)
        .await?;
        let Some((id, stored)) = reserved else {
            // Unknown or locked: same work, same answer.
            self.verify_dummy(password).await?;
            tracing::info!("login refused");
            return Ok(None);
        };
        metrics::counter!("auth_password_checks_total").increment(1);
        let verified = self
            .hasher
            .verify(password, Some(&stored))
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?;
        match verified {
            Verified::Match { rehash } => {
                sqlx::query(
                    "UPDATE users SET failed_attempts = 0, locked_until = NULL,
                         password_hash = COALESCE($2, password_hash)
                     WHERE id = $1",
                )
                .bind(id)
                .bind(rehash.as_deref())
                .execute(&self.pool)
                .await?;
                if rehash.is_some() {
                    tracing::info!(user.id = %id, "password rehashed with current parameters");
                }
                Ok(Some(User { id, username }))
            }
            Verified::Mismatch => {
                tracing::info!(user.id = %id, "login failed");
                Ok(None)
            }
        }
    }

    async fn verify_dummy(&self, password: &SecretString) -> Result<(), AuthError> {
        self.hasher
            .verify(password, None)
            .await
            .map(|_| ())
            .map_err(|e| AuthError::Hashing(e.to_string()))
    }

    /// The scopes the user's roles grant.
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn scopes(&self, user_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT DISTINCT unnest(r.scopes) FROM user_roles ur JOIN roles r ON r.name = ur.role
             WHERE ur.user_id = $1",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
    }

    /// Replaces the user's roles.
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn set_roles(&self, user_id: Uuid, roles: &[String]) -> Result<(), AuthError> {
        let mut tx = self.pool.begin().await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        if !exists {
            return Err(AuthError::NotFound("user"));
        }
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let inserted =
            sqlx::query("INSERT INTO user_roles (user_id, role) SELECT $1, unnest($2::text[])")
                .bind(user_id)
                .bind(roles)
                .execute(&mut *tx)
                .await;
        match inserted {
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(AuthError::invalid("roles", "unknown role"));
            }
            other => {
                other?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
