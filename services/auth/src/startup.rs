//! Wiring: settings → database (migrated) → key ring → router, and the
//! background jobs (key ring reloader, expired-rows sweeper).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use platform_auth_token::{Validator, ValidatorConfig};
use platform_dapr::Sidecar;
use platform_server::{BackgroundTasks, Readiness, Server, StartupError, checks};
use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::clients;
use crate::crypto::{KeyEncryptionKey, digest_secret};
use crate::jobs;
use crate::keys::{KeyRing, KeySchedule};
use crate::passwords::PasswordHasher;
use crate::routes::{self, ADMIN_SCOPE, AppState};
use crate::settings::Settings;
use crate::tokens::Tokens;
use crate::users::Users;

pub const SERVICE: &str = "auth";

/// The client the bootstrap secret belongs to.
pub const ADMIN_CLIENT: &str = "platform-admin";

pub async fn main(manifest_dir: &str) -> ExitCode {
    platform_server::run_service(SERVICE, manifest_dir, |s: &Settings| &s.telemetry, build).await
}

/// Why auth could not start, beyond what every service shares.
#[derive(Debug, thiserror::Error)]
pub enum AuthStartupError {
    #[error(transparent)]
    Common(#[from] StartupError),
    #[error("keys: {0}")]
    Keys(#[from] crate::keys::KeyRingError),
    #[error("settings: {0}")]
    Settings(#[from] platform_settings::SettingsError),
    #[error("crypto: {0}")]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("passwords: {0}")]
    Passwords(#[from] crate::passwords::HashError),
}

impl From<sqlx::Error> for AuthStartupError {
    fn from(e: sqlx::Error) -> Self {
        Self::Common(StartupError::Database(e))
    }
}

/// Connects and migrates the database, loads (or creates) the signing keys,
/// then binds the listener.
pub async fn build(settings: Settings) -> Result<Server, AuthStartupError> {
    let metrics = platform_telemetry::init_metrics().map_err(StartupError::from)?;
    let pool = settings
        .database
        .pool_options()
        .connect_with(settings.database.connect_options())
        .await?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(StartupError::from)?;
    let sidecar = Sidecar::connect_lazy(&settings.dapr).map_err(StartupError::from)?;
    let readiness = Readiness::new(
        vec![checks::dapr_sidecar(&sidecar), checks::postgres(&pool)],
        settings.dapr.probe_timeout(),
    );

    let kek = KeyEncryptionKey::new(&settings.keys.encryption_key_bytes()?)?;
    let keys = KeyRing::load(
        pool.clone(),
        kek,
        KeySchedule {
            publish_delay: Duration::from_secs(settings.keys.publish_delay_secs),
            max_token_lifetime: settings.oauth.max_jwt_lifetime(),
        },
    )
    .await?;
    bootstrap_admin(&pool, &settings).await?;
    let mut background = BackgroundTasks::new();
    jobs::key_reloader::start(
        &mut background,
        keys.clone(),
        Duration::from_secs(settings.keys.reload_interval_secs.max(1)),
    );
    jobs::sweeper::start(&mut background, pool.clone(), jobs::sweeper::INTERVAL);

    let oauth = Arc::new(settings.oauth.clone());
    let admin_validator = Validator::new(
        ValidatorConfig::new(&settings.oauth.issuer, SERVICE),
        keys.clone(),
    );
    let state = AppState {
        tokens: Tokens::new(pool.clone(), keys.clone(), oauth.clone()),
        users: Users::new(
            pool.clone(),
            PasswordHasher::new(
                settings.passwords.concurrent_hashes(),
                settings.passwords.hash_queue_wait(),
            )?,
            settings.passwords.clone(),
        ),
        keys,
        pool,
        oauth,
    };
    let routes = routes::router(state, &admin_validator);
    Ok(
        Server::bind_service(&settings.server, routes, readiness, metrics, background)
            .await
            .map_err(StartupError::from)?,
    )
}

/// Creates the `platform-admin` client from the bootstrap secret once, so
/// that a fresh installation has someone who may use the admin API. A
/// restart never resets it: whoever holds the configured secret (or a
/// leaked old one) must not win back a client an administrator re-keyed or
/// disabled.
async fn bootstrap_admin(pool: &PgPool, settings: &Settings) -> Result<(), sqlx::Error> {
    let Some(secret) = &settings.oauth.bootstrap_admin_secret else {
        return Ok(());
    };
    let created = clients::create_service_client_once(
        pool,
        ADMIN_CLIENT,
        "platform administration",
        &digest_secret(secret.expose_secret()),
        ADMIN_SCOPE,
        SERVICE,
    )
    .await?;
    if created {
        tracing::info!(client_id = ADMIN_CLIENT, "bootstrap admin client created");
    } else {
        tracing::info!(
            client_id = ADMIN_CLIENT,
            "bootstrap admin client exists; its secret is left as it is"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    async fn admin_digest(pool: &PgPool) -> Vec<u8> {
        sqlx::query_scalar("SELECT secret_digest FROM clients WHERE client_id = $1")
            .bind(ADMIN_CLIENT)
            .fetch_one(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_bootstrap_admin_is_created_once_and_a_restart_never_resets_its_secret() {
        let (mut settings, _db, pool) = crate::test_database::migrated().await;

        settings.oauth.bootstrap_admin_secret = Some(SecretString::from("first-admin-secret"));
        bootstrap_admin(&pool, &settings).await.unwrap();
        let first = admin_digest(&pool).await;
        assert_eq!(first, digest_secret("first-admin-secret"));

        // A restart with the same secret, then with another one.
        bootstrap_admin(&pool, &settings).await.unwrap();
        settings.oauth.bootstrap_admin_secret = Some(SecretString::from("other-admin-secret"));
        bootstrap_admin(&pool, &settings).await.unwrap();
        assert_eq!(admin_digest(&pool).await, first);

        // An administrator rotates it: a restart keeps the rotated secret.
        let rotated = clients::issue_secret(&pool, ADMIN_CLIENT)
            .await
            .unwrap()
            .unwrap();
        bootstrap_admin(&pool, &settings).await.unwrap();
        assert_eq!(admin_digest(&pool).await, digest_secret(&rotated));
    }
}
