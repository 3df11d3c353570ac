//! Subscribed domain events (Dapr pub/sub over HTTP) that trigger
//! notifications:
//!
//! | event type                    | template          | category          |
//! |-------------------------------|-------------------|-------------------|
//! | `payments.payment.succeeded`  | `payment_receipt` | `payment_receipt` |
//! | `payments.payment.failed`     | `payment_failed`  | `payments`        |
//! | `payments.refund.succeeded`   | `refund_receipt`  | `payment_receipt` |
//! | `bookkeeping.statement.ready` | `statement_ready` | `statements`      |
//!
//! Events name the recipient, never an address: `customer_reference`
//! (payments) or `account_id` (statements) is looked up in the recipient
//! directory (docs/adr/0019). The event is claimed in the inbox in the same
//! transaction as the notification it creates, so a redelivery creates
//! nothing. An event that can never become a notification (fields missing,
//! template fails to render) is published with the reason to the topic's
//! dead-letter topic (`communication.event.rejected`) and acknowledged.

use axum::body::Bytes;
use axum::extract::State;
use platform_dapr::{CloudEvent, TopicResponse};
use platform_money::{Currency, Money};
use serde::Deserialize as _;
use serde_json::{Value, json};
use sqlx::PgConnection;

use super::AppState;
use crate::domain::{Channel, RecipientId};
use crate::store::{self, Created, OverLimit};
use crate::trigger::{self, Trigger};

pub(crate) const REJECTED_TYPE: &str = "communication.event.rejected";

pub(crate) async fn payments(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    handle(&state, "payments", body).await
}

pub(crate) async fn bookkeeping(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    handle(&state, "bookkeeping", body).await
}

/// What an event asks for, before the recipient is known.
struct Plan {
    template: &'static str,
    category: &'static str,
    recipient_id: RecipientId,
    data: Value,
    /// Money to format in the recipient's locale.
    amount: Option<Money>,
}

fn text<'a>(data: &'a Value, field: &str) -> Result<&'a str, String> {
    data[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("data.{field} must be a non-empty string"))
}

fn recipient_id(data: &Value, field: &str) -> Result<RecipientId, String> {
    RecipientId::parse(text(data, field)?)
        .ok_or_else(|| "the recipient reference is not a valid recipient id".into())
}

fn money(data: &Value) -> Result<Money, String> {
    let amount = data["amount"]
        .as_i64()
        .ok_or("data.amount must be an integer (minor units)")?;
    let currency = Currency::parse(text(data, "currency")?)
        .map_err(|_| "data.currency must be an ISO 4217 code")?;
    Ok(Money::new(amount, currency))
}

/// `Ok(None)`: a type this service does not notify about.
fn plan(event: &CloudEvent<Value>, statements_base_url: &str) -> Result<Option<Plan>, String> {
    let data = &event.data;
    let plan = match event.event_type.as_str() {
        "payments.payment.succeeded" => Plan {
            template: "payment_receipt",
            category: "payment_receipt",
            recipient_id: recipient_id(data, "customer_reference")?,
            data: json!({ "payment_id": text(data, "payment_id")? }),
            amount: Some(money(data)?),
        },
        "payments.payment.failed" => Plan {
            template: "payment_failed",
            category: "payments",
            recipient_id: recipient_id(data, "customer_reference")?,
            data: json!({
                "payment_id": text(data, "payment_id")?,
                "reason": data["reason"].as_str().unwrap_or_default(),
            }),
            amount: Some(money(data)?),
        },
        "payments.refund.succeeded" => Plan {
            template: "refund_receipt",
            category: "payment_receipt",
            recipient_id: recipient_id(data, "customer_reference")?,
            data: json!({
                "payment_id": text(data, "payment_id")?,
                "refund_id": text(data, "refund_id")?,
            }),
            amount: Some(money(data)?),
        },
        "bookkeeping.statement.ready" => {
            let path = text(data, "download_path")?;
            let day = |field: &str| text(data, field).map(|t| t.get(..10).unwrap_or(t).to_owned());
            Plan {
                template: "statement_ready",
                category: "statements",
                recipient_id: recipient_id(data, "account_id")?,
                data: json!({
                    "link": format!("{}{path}", statements_base_url.trim_end_matches('/')),
                    "from": day("from")?,
                    "to": day("to")?,
                }),
                amount: None,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

enum Outcome {
    Created,
    Duplicate,
    Ignored,
    Rejected,
    Retry,
}

#[tracing::instrument(name = "events.handle", skip_all, fields(topic, event.id, event.type))]
async fn handle(state: &AppState, topic: &str, body: Bytes) -> TopicResponse {
    let span = tracing::Span::current();
    span.record("topic", topic);
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("dropping a delivery whose body is not JSON");
        return TopicResponse::Drop;
    };
    let Ok(event) = CloudEvent::<Value>::deserialize(&raw) else {
        tracing::warn!("dropping a delivery that is not a CloudEvent");
        return TopicResponse::Drop;
    };
    span.record("event.id", event.id.as_str());
    span.record("event.type", event.event_type.as_str());
    let outcome = match plan(&event, &state.settings.links.statements_base_url) {
        Ok(None) => Outcome::Ignored,
        Ok(Some(plan)) => notify(state, topic, &event, &raw, plan).await,
        Err(reason) => reject(state, topic, &event, &raw, &reason).await,
    };
    let (label, response) = match outcome {
        Outcome::Created => ("created", TopicResponse::Success),
        Outcome::Duplicate => ("duplicate", TopicResponse::Success),
        Outcome::Ignored => ("ignored", TopicResponse::Success),
        Outcome::Rejected => ("rejected", TopicResponse::Success),
        Outcome::Retry => ("retry", TopicResponse::Retry),
    };
    metrics::counter!("events_handled_total", "topic" => topic.to_owned(), "outcome" => label)
        .increment(1);
    response
}

async fn notify(
    state: &AppState,
    topic: &str,
    event: &CloudEvent<Value>,
    raw: &Value,
    plan: Plan,
) -> Outcome {
    let contacts = match store::recipient(&state.pool, &plan.recipient_id).await {
        Ok(contacts) => contacts.unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the recipient directory; asking for redelivery");
            return Outcome::Retry;
        }
    };
    let mut data = plan.data;
    if let (Some(money), Value::Object(fields)) = (plan.amount, &mut data) {
        let locale = contacts.locale.as_deref().unwrap_or("en");
        fields.insert("amount".into(), Value::String(money.localized(locale)));
    }
    let trigger = Trigger {
        idempotency_key: format!("event:{}:{}", event.source, event.id),
        request_hash: store::sha256_hex(event.data.to_string().as_bytes()),
        origin: "event",
        recipient_id: plan.recipient_id,
        contacts,
        template: plan.template.to_owned(),
        category: plan.category.to_owned(),
        data,
        channels: vec![Channel::Email, Channel::Sms, Channel::Push],
    };
    let draft = match trigger::prepare(
        &state.templates,
        &state.settings.categories.critical,
        trigger,
        true,
    ) {
        Ok(draft) => draft,
        // A template that cannot render this event. (NoAddress is not
        // reached: prepare() records undeliverable drafts as `not_sent`.)
        Err(error) => return reject(state, topic, event, raw, &error.to_string()).await,
    };
    let result: Result<Outcome, sqlx::Error> = async {
        let mut tx = state.pool.begin().await?;
        if !claim(&mut tx, topic, event).await? {
            return Ok(Outcome::Duplicate);
        }
        let created = match store::create(
            &mut tx,
            &draft,
            &state.settings.throttle,
            OverLimit::RecordNotSent,
        )
        .await
        {
            Ok(created) => created,
            Err(store::CreateError::Database(e)) => return Err(e),
            // The event's key is taken by another request (the inbox row
            // was missing); events are never throttled (RecordNotSent).
            Err(other) => {
                tracing::warn!(error = %other, "event already has a notification");
                return Ok(Outcome::Duplicate);
            }
        };
        tx.commit().await?;
        Ok(match created {
            Created::New(n) => {
                tracing::debug!(notification.id = %n.id, status = n.status.as_str(), "notification created from event");
                Outcome::Created
            }
            Created::Existing(_) => Outcome::Duplicate,
        })
    }
    .await;
    match result {
        Ok(outcome) => {
            state.relay.wake();
            outcome
        }
        Err(error) => {
            tracing::warn!(%error, "event not applied; asking for redelivery");
            Outcome::Retry
        }
    }
}

async fn claim(
    conn: &mut PgConnection,
    topic: &str,
    event: &CloudEvent<Value>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (source, event_id, event_type, topic, subject)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source, event_id) DO NOTHING",
    )
    .bind(&event.source)
    .bind(&event.id)
    .bind(&event.event_type)
    .bind(topic)
    .bind(&event.subject)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Claims the event and puts it with `reason` on `<topic>.deadletter`
/// (through the outbox, once).
async fn reject(
    state: &AppState,
    topic: &str,
    event: &CloudEvent<Value>,
    raw: &Value,
    reason: &str,
) -> Outcome {
    tracing::warn!(reason, "rejecting an event to the dead-letter topic");
    let result: Result<(), sqlx::Error> = async {
        let mut tx = state.pool.begin().await?;
        if claim(&mut tx, topic, event).await? {
            sqlx::query(
                "INSERT INTO outbox (pubsub, topic, event_id, event_type, subject, payload)
                 VALUES ('pubsub', $1, $2, $3, $4, $5)",
            )
            .bind(format!("{topic}.deadletter"))
            .bind(format!("communication-rejected-{}-{}", event.source, event.id))
            .bind(REJECTED_TYPE)
            .bind(&event.id)
            .bind(json!({ "reason": reason, "topic": topic, "rejected_by": "communication", "event": raw }))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => {
            state.relay.wake();
            Outcome::Rejected
        }
        Err(error) => {
            tracing::warn!(%error, "cannot record the rejection; asking for redelivery");
            Outcome::Retry
        }
    }
}
