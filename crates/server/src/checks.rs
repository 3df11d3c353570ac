//! The readiness checks services share.

use platform_dapr::Sidecar;
use sqlx::PgPool;

use crate::Check;

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
