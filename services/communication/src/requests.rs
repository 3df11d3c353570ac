//! A notification requested through the API: contacts the request leaves
//! out come from the recipient directory, the trigger is rendered, and the
//! notification is recorded once per Idempotency-Key (`queued` with its
//! send job, or `not_sent`), or refused when the recipient's window is full.
//! Events take the same steps in [`crate::events`], with their own answers.

use serde_json::Value;
use sqlx::PgPool;

use crate::domain::{Channel, Contacts, RecipientId};
use crate::error::CommunicationError;
use crate::outbox::Relay;
use crate::settings::Settings;
use crate::store::notifications::{self, CreateError, Created, Notification, OverLimit};
use crate::store::recipients;
use crate::templates::Templates;
use crate::trigger::{self, PrepareError, Trigger};

/// A request as the route parsed it.
#[derive(Debug, Clone)]
pub struct NotificationRequest {
    /// The client's Idempotency-Key.
    pub idempotency_key: String,
    /// Digest of the request as received: the same key with another body
    /// is a conflict.
    pub request_hash: String,
    pub recipient_id: RecipientId,
    /// Contacts given in the request; the directory fills in the rest.
    pub contacts: Contacts,
    pub template: String,
    pub category: String,
    pub data: Value,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, Copy)]
pub struct Requests<'a> {
    pub pool: &'a PgPool,
    pub templates: &'a Templates,
    pub settings: &'a Settings,
    pub relay: &'a Relay,
}

impl Requests<'_> {
    /// Records the notification and returns it (the first one again for a
    /// repeated key); sending happens in the worker.
    pub async fn submit(
        &self,
        request: NotificationRequest,
    ) -> Result<Notification, CommunicationError> {
        let directory = recipients::recipient(self.pool, &request.recipient_id)
            .await?
            .unwrap_or_default();
        let trigger = Trigger {
            idempotency_key: format!("api:{}", request.idempotency_key),
            request_hash: request.request_hash,
            origin: "api",
            recipient_id: request.recipient_id,
            contacts: request.contacts.or(directory),
            template: request.template,
            category: request.category,
            data: request.data,
            channels: request.channels,
        };
        let draft = trigger::prepare(
            self.templates,
            &self.settings.categories.critical,
            trigger,
            false,
        )
        .map_err(|e| match e {
            PrepareError::Render(e) => CommunicationError::Render(e),
            PrepareError::NoAddress(_) => CommunicationError::invalid("recipient", e.to_string()),
        })?;
        let mut tx = self.pool.begin().await?;
        let created =
            notifications::create(&mut tx, &draft, &self.settings.throttle, OverLimit::Refuse)
                .await
                .map_err(|e| match e {
                    CreateError::Conflict => CommunicationError::IdempotencyConflict,
                    CreateError::Throttled { retry_after_secs } => {
                        CommunicationError::Throttled { retry_after_secs }
                    }
                    CreateError::Database(e) => CommunicationError::Database(e),
                })?;
        tx.commit().await?;
        Ok(match created {
            Created::New(n) => {
                self.relay.wake();
                metrics::counter!("notifications_created_total", "origin" => "api", "status" => n.status.as_str()).increment(1);
                n
            }
            Created::Existing(n) => n,
        })
    }
}
