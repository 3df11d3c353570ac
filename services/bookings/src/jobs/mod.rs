//! Background loops, one file each, registered on `BackgroundTasks`.

pub(crate) mod outbox_relay;
pub(crate) mod saga_worker;
