//! Background work: publishing the outbox and reconciling unknown provider
//! outcomes.

pub mod outbox_relay;
pub mod reconciler;
