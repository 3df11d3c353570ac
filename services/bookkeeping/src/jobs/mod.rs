//! Background work: the statement export worker (fed by the
//! `bookkeeping.statements` subscription route) and the sweeper that queues
//! lost jobs again, started on the service's
//! [`platform_server::BackgroundTasks`] and stopped with the server.

pub(crate) mod parking_lot_redrive;
pub(crate) mod statement_export;
pub(crate) mod statement_sweeper;
