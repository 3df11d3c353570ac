//! End users: registration, login for the authorization endpoint, roles.
//!
//! Lockout holds under concurrency because an attempt is *counted before the
//! password is checked*, in one atomic UPDATE that also refuses when the
//! limit is reached: N parallel guesses reserve at most the remaining
//! attempts, the rest are refused without their password being looked at.
//! A correct password resets the count.
//!
//! The hashing slot is taken *before* the attempt is counted, and counting,
//! checking and recording run in a task of their own: a request that waits
//! for a slot, gives up (503) or is cancelled while queued has counted
//! nothing, and one cancelled after counting still has its outcome recorded.

use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use tracing::{Instrument as _, instrument};
use uuid::Uuid;

use crate::error::{AuthError, conflict_on_unique};
use crate::passwords::{HashPermit, PasswordHasher, Verified};
use crate::settings::PasswordSettings;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
}

/// A username as registered: exactly what the contract's pattern allows
/// (3–64 characters of `[a-z0-9._@-]`, starting alphanumeric). Nothing is
/// trimmed or lower-cased here, so a name outside the pattern is refused
/// rather than silently stored as another one.
pub fn parse_username(raw: &str) -> Result<String, AuthError> {
    let valid = (3..=64).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@-".contains(c));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(AuthError::invalid(
            "username",
            "username must be 3-64 characters of a-z, 0-9, '.', '_', '@', '-', starting with a letter or digit",
        ))
    }
}

/// A username typed at the login form: surrounding blanks and case do not
/// matter (every stored name is lower case).
fn parse_login_name(raw: &str) -> Result<String, AuthError> {
    parse_username(&raw.trim().to_lowercase())
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
        let hash = self.hasher.hash(password).await?;
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
    /// for every failure alike (unknown, wrong, locked); [`AuthError::Busy`]
    /// when no hashing slot frees up in time (nothing counted).
    #[instrument(skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Option<User>, AuthError> {
        let permit = self.hasher.permit().await?;
        let Ok(username) = parse_login_name(username) else {
            self.hasher.verify_with(permit, password, None).await?;
            return Ok(None);
        };
        // From here on the attempt runs to its end even if the caller goes
        // away: once counted, its outcome (a reset on success) is recorded.
        let this = self.clone();
        let password = password.clone();
        tokio::spawn(
            async move { this.counted_attempt(permit, username, &password).await }
                .instrument(tracing::Span::current()),
        )
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?
    }

    async fn counted_attempt(
        &self,
        permit: HashPermit,
        username: String,
        password: &SecretString,
    ) -> Result<Option<User>, AuthError> {
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
            self.hasher.verify_with(permit, password, None).await?;
            tracing::info!("login refused");
            return Ok(None);
        };
        let verified = self
            .hasher
            .verify_with(permit, password, Some(&stored))
            .await?;
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

    /// The scopes the user's roles grant.
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn scopes(&self, user_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
        role_scopes(&self.pool, user_id).await
    }

    /// Replaces the user's roles.
    #[instrument(skip_all, fields(user.id = %user_id))]
    pub async fn set_roles(&self, user_id: Uuid, roles: &[String]) -> Result<(), AuthError> {
        let mut tx = platform_db::begin(&self.pool).await?;
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
            // A role named twice is granted once (the same set), not a
            // unique violation (a 500, found by the fuzzer).
            sqlx::query(
                "INSERT INTO user_roles (user_id, role) SELECT DISTINCT $1::uuid, r FROM unnest($2::text[]) AS r",
            )
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

/// The scopes the user's roles grant, read through `executor` (the pool, or
/// a transaction that must see the roles as of its own snapshot).
pub async fn role_scopes<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT unnest(r.scopes) FROM user_roles ur JOIN roles r ON r.name = ur.role
         WHERE ur.user_id = $1",
    )
    .bind(user_id)
    .fetch_all(executor)
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use argon2::Params;
    use platform_test_support::TestDatabase;

    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    #[test]
    fn a_registered_name_must_match_the_contract_as_sent() {
        assert_eq!(parse_username("alice.b@x-1").unwrap(), "alice.b@x-1");
        // Each of these was trimmed or lower-cased into a valid name before.
        for refused in [
            "Alice", " alice", "alice ", "ALICE", "al", ".alice", "alice!",
        ] {
            assert!(parse_username(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn a_login_name_ignores_case_and_surrounding_blanks() {
        assert_eq!(parse_login_name(" Alice ").unwrap(), "alice");
        assert!(parse_login_name("al").is_err());
    }

    /// A migrated database of its own, and `Users` over it with a cheap
    /// hash (the parameters do not matter to counting) and `slots` slots.
    async fn users(
        slots: usize,
        queue_wait: Duration,
        max_failed_attempts: i32,
    ) -> (TestDatabase, PgPool, Users, Uuid) {
        let (settings, db, pool) = crate::test_database::migrated().await;
        let hasher =
            PasswordHasher::with_params(slots, queue_wait, Params::new(8, 1, 1, None).unwrap())
                .unwrap();
        let mut passwords = settings.passwords.clone();
        passwords.max_failed_attempts = max_failed_attempts;
        let users = Users::new(pool.clone(), hasher, passwords);
        let alice = users
            .register("alice", &SecretString::from(PASSWORD))
            .await
            .unwrap();
        (db, pool, users, alice.id)
    }

    async fn failed_attempts(pool: &PgPool) -> i32 {
        sqlx::query_scalar("SELECT failed_attempts FROM users WHERE username = 'alice'")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_login_without_a_hashing_slot_in_time_is_busy_and_not_counted() {
        let (_db, pool, users, _) = users(1, Duration::from_millis(50), 5).await;
        let held = users.hasher.permit().await.unwrap();
        let outcome = tokio::time::timeout(
            Duration::from_secs(30),
            users.login("alice", &SecretString::from("wrong password")),
        )
        .await
        .expect("the wait for a hashing slot is bounded");
        assert!(matches!(outcome, Err(AuthError::Busy)), "{outcome:?}");
        assert_eq!(AuthError::Busy.status_code(), 503);
        assert_eq!(failed_attempts(&pool).await, 0);
        assert_eq!(users.hasher.verifications(), 0);
        drop(held);
        assert!(
            users
                .login("alice", &SecretString::from(PASSWORD))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_login_cancelled_while_queued_is_not_counted() {
        let (_db, pool, users, _) = users(1, Duration::from_secs(60), 5).await;
        let held = users.hasher.permit().await.unwrap();
        let queued = tokio::spawn({
            let users = users.clone();
            async move {
                users
                    .login("alice", &SecretString::from("wrong password"))
                    .await
            }
        });
        // Give it time to queue (and, were it counted first, to count).
        tokio::time::sleep(Duration::from_millis(300)).await;
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        drop(held);
        assert_eq!(failed_attempts(&pool).await, 0);
        assert_eq!(users.hasher.verifications(), 0);
    }

    #[tokio::test]
    async fn n_plus_k_concurrent_wrong_passwords_verify_exactly_n_then_lock() {
        const LIMIT: i32 = 3;
        let (_db, pool, users, _) = users(2, Duration::from_secs(60), LIMIT).await;
        let attempts = (0..12).map(|i| {
            let users = users.clone();
            tokio::spawn(async move {
                users
                    .login("alice", &SecretString::from(format!("wrong password {i}")))
                    .await
            })
        });
        for outcome in futures::future::join_all(attempts).await {
            assert!(outcome.unwrap().unwrap().is_none());
        }
        assert_eq!(users.hasher.verifications(), LIMIT as u64);
        assert_eq!(failed_attempts(&pool).await, LIMIT);
        // Locked: the right password is not even checked.
        assert!(
            users
                .login("alice", &SecretString::from(PASSWORD))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(users.hasher.verifications(), LIMIT as u64);
    }
}
