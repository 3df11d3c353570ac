//! Background work: the outbox relay and the send sweeper, started on the
//! service's [`platform_server::BackgroundTasks`] and stopped with the
//! server, and the send worker behind the routes Dapr delivers send jobs to.

pub(crate) mod outbox_relay;
pub(crate) mod parking_lot_redrive;
pub(crate) mod send_sweeper;
pub(crate) mod send_worker;
