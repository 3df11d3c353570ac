//! `communication`: the platform's notification service (email, SMS, push).
//!
//! Triggers are the API (`POST /v1/notifications`) and domain events
//! (declarative subscriptions in `dapr-config/subscriptions/communication-*.yaml`).
//! A trigger is rendered from file [`templates`] first, then stored in
//! PostgreSQL (`queued`, or `not_sent` when opted out) together with a send
//! job in the [`outbox`]; the relay publishes the job to the service's own
//! queue, and the send worker delivers it through a Dapr output binding per
//! channel ([`sender`]). Every status change is recorded and announced as
//! `communication.notification.status_changed`.

pub mod domain;
pub mod error;
pub mod events;
mod jobs;
pub mod outbox;
pub mod requests;
mod routes;
pub mod sender;
pub mod settings;
pub mod startup;
pub mod store;
pub mod templates;
pub mod trigger;
