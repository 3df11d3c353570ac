//! Turning a trigger (an API request or a domain event) into a draft
//! notification: channel chosen, template rendered. Nothing here touches the
//! database; a trigger that cannot be rendered never becomes a notification.

use serde_json::Value;
use uuid::Uuid;

use crate::domain::{Channel, Contacts, RecipientId};
use crate::store::notifications::Draft;
use crate::templates::{RenderError, Templates};

#[derive(Debug, Clone)]
pub struct Trigger {
    pub idempotency_key: String,
    pub request_hash: String,
    pub origin: &'static str,
    pub recipient_id: RecipientId,
    pub contacts: Contacts,
    pub template: String,
    pub category: String,
    pub data: Value,
    /// Channels to use, in order of preference; the first the template
    /// supports and the recipient has an address for is taken.
    pub channels: Vec<Channel>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrepareError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("the recipient has no address for any of the channels {0:?} this template supports")]
    NoAddress(Vec<Channel>),
}

/// Renders `trigger`. With `record_undeliverable`, a recipient without an
/// address becomes a draft to record as `not_sent` instead of an error.
pub fn prepare(
    templates: &Templates,
    critical: &[String],
    trigger: Trigger,
    record_undeliverable: bool,
) -> Result<Draft, PrepareError> {
    if !templates.exists(&trigger.template) {
        return Err(RenderError::UnknownTemplate(trigger.template).into());
    }
    let hints = if trigger.channels.is_empty() {
        Channel::ALL.to_vec()
    } else {
        trigger.channels.clone()
    };
    let supported: Vec<Channel> = hints
        .iter()
        .copied()
        .filter(|c| templates.supports(&trigger.template, *c))
        .collect();
    let Some(first_supported) = supported.first().copied() else {
        return Err(RenderError::NoChannel {
            template: trigger.template,
            channel: hints[0],
        }
        .into());
    };
    let chosen = supported
        .iter()
        .copied()
        .find(|c| trigger.contacts.address(*c).is_some());
    let id = Uuid::now_v7();
    let locale = templates.resolve_locale(&trigger.template, trigger.contacts.locale.as_deref());
    let critical = critical.contains(&trigger.category);
    let (channel, content, not_sent) = match chosen {
        Some(channel) => {
            let content =
                templates.render(&trigger.template, &locale, channel, &trigger.data, id)?;
            (channel, content, None)
        }
        None if record_undeliverable => {
            // Still rendered: a template that cannot render is a bug to see now.
            let content = templates.render(
                &trigger.template,
                &locale,
                first_supported,
                &trigger.data,
                id,
            )?;
            (first_supported, content, Some("no_address".to_owned()))
        }
        None => return Err(PrepareError::NoAddress(supported)),
    };
    Ok(Draft {
        id,
        idempotency_key: trigger.idempotency_key,
        request_hash: trigger.request_hash,
        origin: trigger.origin,
        address: trigger.contacts.address(channel).map(ToOwned::to_owned),
        recipient_id: trigger.recipient_id,
        channel,
        category: trigger.category,
        template: trigger.template,
        locale,
        content,
        critical,
        not_sent,
    })
}
