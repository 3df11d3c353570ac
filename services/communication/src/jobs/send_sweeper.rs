//! Re-queues interrupted and lost sends: in flight without news for
//! `sending.stale_after_secs`, or queued and idle for
//! `sending.requeue_after_secs`. Safe in every replica: claims decide who
//! sends.

use std::time::Duration;

use platform_server::BackgroundTasks;
use sqlx::PgPool;

use crate::outbox::Relay;
use crate::settings::SendingSettings;
use crate::store::sends;

/// Sweeps every `sending.sweep_interval_ms`, the first time one interval
/// after the start, until the service stops.
pub(crate) fn start(
    tasks: &mut BackgroundTasks,
    pool: PgPool,
    relay: Relay,
    settings: SendingSettings,
) {
    let interval = Duration::from_millis(settings.sweep_interval_ms);
    tasks.every_after("send-sweeper", interval, move || {
        let (pool, relay, settings) = (pool.clone(), relay.clone(), settings.clone());
        async move { sweep(&pool, &relay, &settings).await }
    });
}

async fn sweep(
    pool: &PgPool,
    relay: &Relay,
    settings: &SendingSettings,
) -> Result<(), sqlx::Error> {
    let requeued =
        sends::requeue_stale(pool, settings.stale_after_secs, settings.requeue_after_secs).await?;
    if requeued > 0 {
        tracing::info!(
            notifications = requeued,
            "re-queued interrupted or idle sends"
        );
        relay.wake();
    }
    Ok(())
}
