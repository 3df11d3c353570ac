//! A notification requested through the API: contacts the request leaves
//! out come from the recipient directory, the trigger is rendered, and the
//! notification is recorded once per Idempotency-Key (`queued` with its
//! send job, or `not_sent`), or refused when the recipient's window is full.
//! Events take the same steps in [`crate::events`], with their own answers.

use sqlx::PgPool;

use crate::error::CommunicationError;
use crate::outbox::Relay;
use crate::settings::Settings;
use crate::store::notifications::{self, CreateError, Created, Notification, OverLimit};
use crate::store::recipients;
use crate::templates::Templates;
use crate::trigger::{self, PrepareError, Trigger};

#[derive(Debug, Clone, Copy)]
pub struct Requests<'a> {
    pub pool: &'a PgPool,
    pub templates: &'a Templates,
    pub settings: &'a Settings,
    pub relay: &'a Relay,
}

impl Requests<'_> {
    /// Records the notification `trigger` asks for and returns it (the
    /// first one again for a repeated key); sending happens in the worker.
    /// Contacts the trigger leaves out come from the recipient directory.
    pub async fn submit(&self, mut trigger: Trigger) -> Result<Notification, CommunicationError> {
        let directory = recipients::recipient(self.pool, &trigger.recipient_id)
            .await?
            .unwrap_or_default();
        trigger.contacts = trigger.contacts.or(directory);
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
        let mut tx = platform_db::begin(self.pool).await?;
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
