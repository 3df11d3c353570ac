//! Runs the outbox relay ([`Relay::run`]): publishes what transactions wrote
//! to the outbox, at once when woken and at least every `relay.interval_ms`,
//! with one last round for what the final requests committed when the
//! service stops.

use platform_server::BackgroundTasks;

use crate::outbox::Relay;

pub(crate) fn start(tasks: &mut BackgroundTasks, relay: Relay) {
    tasks.spawn("outbox-relay", |stop| relay.run(stop));
}
