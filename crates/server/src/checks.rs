//! The readiness checks services share.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use platform_dapr::Sidecar;
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::{Check, Readiness};

/// Ready when the Dapr sidecar can serve outbound calls.
pub fn dapr_sidecar(sidecar: &Sidecar) -> Check {
    let sidecar = sidecar.clone();
    Check::new("dapr", move || {
        let sidecar = sidecar.clone();
        async move { sidecar.check_outbound().await.map_err(|e| e.to_string()) }
    })
}

/// Ready when a state store answers a read through the sidecar: the sidecar's
/// own health says nothing about the store behind it (Redis may be down).
pub fn dapr_state_store(sidecar: &Sidecar, store: &str) -> Check {
    let sidecar = sidecar.clone();
    let store = store.to_owned();
    Check::new("state_store", move || {
        let sidecar = sidecar.clone();
        let store = store.clone();
        async move {
            sidecar
                .get_state(&store, "readiness-probe")
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
}

/// Ready when the service's own database answers a trivial query.
pub fn postgres(pool: &PgPool) -> Check {
    let pool = pool.clone();
    Check::new("postgres", move || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
}

/// Applies `migrator` (the service's `sqlx::migrate!("./migrations")`) in the
/// background, retrying with backoff while the database is unreachable;
/// ready once applied. sqlx takes an advisory lock, so replicas may race
/// safely, and start-up order does not matter.
pub fn migrations(pool: &PgPool, migrator: &'static Migrator) -> Check {
    let migrated = Arc::new(AtomicBool::new(false));
    tokio::spawn(migrate_until_done(
        migrator,
        pool.clone(),
        Arc::clone(&migrated),
    ));
    Check::new("migrations", move || {
        let done = migrated.load(Ordering::Acquire);
        async move {
            if done {
                Ok(())
            } else {
                Err("database migrations not applied yet".to_owned())
            }
        }
    })
}

async fn migrate_until_done(migrator: &'static Migrator, pool: PgPool, migrated: Arc<AtomicBool>) {
    let mut delay = Duration::from_millis(200);
    loop {
        match migrator.run(&pool).await {
            Ok(()) => {
                migrated.store(true, Ordering::Release);
                tracing::info!("database migrations applied");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "database migrations failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The readiness of a service that owns a PostgreSQL database: its sidecar,
/// the database, and its migrations (applied in the background from now on,
/// see [`migrations`]).
pub fn service_with_database(
    sidecar: &Sidecar,
    pool: &PgPool,
    migrator: &'static Migrator,
    probe_timeout: Duration,
) -> Readiness {
    Readiness::new(
        vec![
            dapr_sidecar(sidecar),
            postgres(pool),
            migrations(pool, migrator),
        ],
        probe_timeout,
    )
}
