//! `POST /v1/notifications` and `GET /v1/notifications/{id}`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use platform_problem::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use crate::domain::{self, Channel, ContactsRequest, RecipientId};
use crate::error::CommunicationError;
use crate::requests::Requests;
use crate::store::notifications::{self, HistoryEntry, Notification};
use crate::trigger::Trigger;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecipientBody {
    id: String,
    email: Option<String>,
    phone: Option<String>,
    push_token: Option<String>,
    locale: Option<String>,
}

impl RecipientBody {
    fn contacts(&self) -> ContactsRequest {
        ContactsRequest {
            email: self.email.clone(),
            phone: self.phone.clone(),
            push_token: self.push_token.clone(),
            locale: self.locale.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewNotification {
    recipient: RecipientBody,
    template: String,
    category: String,
    #[serde(default = "empty_object")]
    data: Value,
    #[serde(default)]
    channels: Vec<Channel>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

#[derive(Debug, Serialize)]
pub(crate) struct NotificationBody {
    #[serde(flatten)]
    notification: Notification,
    #[serde(skip_serializing_if = "Option::is_none")]
    history: Option<Vec<HistoryEntry>>,
}

type Accepted = (
    StatusCode,
    [(&'static str, String); 1],
    Json<NotificationBody>,
);

const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Parses the request, hands it to [`Requests::submit`] and answers 202.
#[tracing::instrument(name = "notifications.create", skip_all, fields(notification.id))]
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Accepted, CommunicationError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            CommunicationError::invalid("Idempotency-Key", "header required, 1 to 255 characters")
        })?
        .to_owned();
    let raw: Value = serde_json::from_slice(&body)
        .map_err(|e| CommunicationError::invalid("body", format!("not JSON: {e}")))?;
    let request = NewNotification::deserialize(&raw)
        .map_err(|e| CommunicationError::invalid("body", e.to_string()))?;
    let recipient_id = RecipientId::parse(&request.recipient.id).ok_or_else(|| {
        CommunicationError::invalid(
            "recipient.id",
            "1 to 128 characters of letters, digits and - _ . : @",
        )
    })?;
    if !domain::valid_category(&request.category) {
        return Err(CommunicationError::invalid(
            "category",
            "lowercase letters, digits and _, starting with a letter",
        ));
    }
    let given = request
        .recipient
        .contacts()
        .parse()
        .map_err(|(field, reason)| {
            CommunicationError::invalid(format!("recipient.{field}"), reason)
        })?;
    if !request.data.is_object() {
        return Err(CommunicationError::invalid("data", "must be a JSON object"));
    }
    let requests = Requests {
        pool: &state.pool,
        templates: &state.templates,
        settings: &state.settings,
        relay: &state.relay,
    };
    let notification = requests
        .submit(Trigger {
            idempotency_key: format!("api:{key}"),
            // serde_json's map is ordered by key: the hash does not depend on
            // the order the client wrote the fields in.
            request_hash: notifications::sha256_hex(raw.to_string().as_bytes()),
            origin: "api",
            recipient_id,
            contacts: given,
            template: request.template,
            category: request.category,
            data: request.data,
            channels: request.channels,
        })
        .await?;
    tracing::Span::current().record("notification.id", notification.id.to_string());
    Ok((
        StatusCode::ACCEPTED,
        [("location", format!("/v1/notifications/{}", notification.id))],
        Json(NotificationBody {
            notification,
            history: None,
        }),
    ))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<NotificationBody>, CommunicationError> {
    let id = Uuid::parse_str(&id).map_err(|_| CommunicationError::NotFound("notification"))?;
    let notification = notifications::get(&state.pool, id)
        .await?
        .ok_or(CommunicationError::NotFound("notification"))?;
    let history = notifications::history(&state.pool, id).await?;
    Ok(Json(NotificationBody {
        notification,
        history: Some(history),
    }))
}
