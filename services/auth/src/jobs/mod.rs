//! Background work, started at build time on the service's
//! [`platform_server::BackgroundTasks`] and stopped with the server.

pub mod key_reloader;
pub mod sweeper;
