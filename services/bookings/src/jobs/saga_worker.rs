//! Runs the saga's pending commands (`saga_commands`): at once when a step
//! wakes it, and every `saga.worker_interval_ms` for calls that failed
//! (payments away) or were cut short by a crash. This is a retry loop for
//! calls already decided, not a clock: deadlines are Dapr jobs (ADR 0037).

use std::time::Duration;

use platform_server::{BackgroundTasks, StopSignal};

use crate::saga::Saga;

pub(crate) fn start(tasks: &mut BackgroundTasks, saga: Saga, interval: Duration) {
    tasks.spawn("saga-worker", move |stop| run(saga, interval, stop));
}

async fn run(saga: Saga, interval: Duration, mut stop: StopSignal) {
    let wake = saga.wake();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval) => {}
            () = stop.stopped() => {
                tracing::info!("saga worker stopped");
                return;
            }
        }
        if let Err(error) = saga.run_commands(None).await {
            tracing::warn!(%error, "saga worker round failed; retrying at the next interval");
        }
    }
}
