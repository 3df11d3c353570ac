//! Queues statement jobs again when their message was lost or their worker
//! died ([`StatementExports::requeue_pending`]).

use std::time::Duration;

use platform_server::BackgroundTasks;

use super::statement_export::StatementExports;

/// Sweeps every `interval`, the first time one interval after the start,
/// until the service stops.
pub(crate) fn start(tasks: &mut BackgroundTasks, exports: StatementExports, interval: Duration) {
    tasks.every_after("statement-sweeper", interval, move || {
        let exports = exports.clone();
        async move { exports.requeue_pending().await }
    });
}
