//! Deletes rows that can no longer change an answer, so the tables the hot
//! paths read stay small: revoked access-token ids past their expiry,
//! expired refresh tokens, and codes a day after they expired (kept that
//! long so a late second redemption still revokes its grant).

use std::time::Duration;

use platform_server::BackgroundTasks;
use sqlx::PgPool;

pub const INTERVAL: Duration = Duration::from_secs(600);

/// Sweeps now and then every `interval` until the service stops.
pub fn start(tasks: &mut BackgroundTasks, pool: PgPool, interval: Duration) {
    tasks.every("expired-rows-sweeper", interval, move || {
        let pool = pool.clone();
        async move { sweep(&pool).await.map(|_| ()) }
    });
}

#[tracing::instrument(skip_all)]
pub async fn sweep(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM revoked_access_tokens WHERE expires_at < now()",
        "DELETE FROM refresh_tokens WHERE expires_at < now()",
        "DELETE FROM authorization_codes WHERE expires_at < now() - interval '1 day'",
    ] {
        removed += sqlx::query(sql).execute(pool).await?.rows_affected();
    }
    if removed > 0 {
        tracing::info!(sweep.removed = removed, "expired rows removed");
    }
    Ok(removed)
}
