//! Subscribed domain events (Dapr pub/sub over HTTP) that trigger
//! notifications:
//!
//! | event type                    | template          | category          |
//! |-------------------------------|-------------------|-------------------|
//! | `payments.payment.succeeded`  | `payment_receipt` | `payment_receipt` |
//! | `payments.payment.failed`     | `payment_failed`  | `payments`        |
//! | `payments.refund.succeeded`   | `refund_receipt`  | `payment_receipt` |
//! | `bookkeeping.statement.ready` | `statement_ready` | `statements`      |
//! | `bookings.booking.confirmed`  | `booking_confirmed` | `bookings`      |
//! | `bookings.booking.released`   | `booking_expired` | `bookings`        |
//! | `bookings.booking.cancelled`, `bookings.booking.refunded` | `booking_cancelled` | `bookings` |
//!
//! Events name the recipient, never an address: `customer_reference`
//! (payments), `account_id` (statements) or `participant` (bookings) is
//! looked up in the recipient directory (docs/adr/0019). Booking events carry
//! the participant's language (`locale`), which wins over the directory's.
//! The event is claimed in the inbox in the same transaction as the
//! notification it creates, so a redelivery creates nothing. A booking's
//! `cancelled` and `refunded` share one notification key per booking
//! (docs/adr/0044): the member hears "cancellation confirmed" once, from
//! whichever arrives first (the refund itself has its own receipt from
//! `payments.refund.succeeded`). An event that can never become a
//! notification (fields missing, template fails to render) is published with
//! the reason to the topic's dead-letter topic (`communication.event.rejected`)
//! and acknowledged.

use platform_consumer::inbox::{self, Entry};
use platform_consumer::parking_lot::Redrive;
use platform_consumer::{CloudEvent, DeadLetter, Outcome};
use platform_money::{Currency, Money};
use serde::Deserialize as _;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::domain::{Channel, RecipientId};
use crate::outbox::Relay;
use crate::settings::Settings;
use crate::startup::SERVICE;
use crate::store::notifications::{self, CreateError, Created, OverLimit};
use crate::store::outbox::{self, OutboxMessage};
use crate::store::recipients;
use crate::templates::Templates;
use crate::trigger::{self, Trigger};

/// What handling an event needs from the service.
#[derive(Debug, Clone, Copy)]
pub struct EventHandler<'a> {
    pub pool: &'a PgPool,
    pub templates: &'a Templates,
    pub settings: &'a Settings,
    /// Woken after a commit that wrote to the outbox.
    pub relay: &'a Relay,
}

/// The parking lot's re-drive of a parked event (docs/adr/0029): an owned
/// [`EventHandler`].
#[derive(Debug, Clone)]
pub struct EventRedrive {
    pub pool: PgPool,
    pub templates: std::sync::Arc<Templates>,
    pub settings: std::sync::Arc<Settings>,
    pub relay: Relay,
}

impl Redrive for EventRedrive {
    /// Handles the event as a delivery from `topic` would be. A rejection
    /// claimed the event in the inbox (so that its letter is published
    /// once): a re-drive first releases such a claim, never one whose
    /// notification exists (that event was applied).
    async fn apply(&self, topic: &str, raw: &Value) -> Outcome {
        let Ok(event) = CloudEvent::<Value>::deserialize(raw) else {
            return Outcome::Rejected("not a CloudEvent with JSON data".into());
        };
        let released = sqlx::query(
            "DELETE FROM inbox
              WHERE source = $1 AND event_id = $2
                AND NOT EXISTS (SELECT 1 FROM notifications WHERE idempotency_key = $3)",
        )
        .bind(&event.source)
        .bind(&event.id)
        .bind(format!("event:{}:{}", event.source, event.id))
        .execute(&self.pool)
        .await;
        if let Err(error) = released {
            tracing::warn!(%error, "cannot prepare a re-drive; trying again later");
            return Outcome::Retry;
        }
        let handler = EventHandler {
            pool: &self.pool,
            templates: &self.templates,
            settings: &self.settings,
            relay: &self.relay,
        };
        handler.handle(topic, &event, raw).await
    }

    fn consumes(&self, event_type: &str) -> bool {
        NOTIFIED_TYPES.contains(&event_type)
    }
}

/// The event types [`plan`] turns into notifications.
const NOTIFIED_TYPES: [&str; 8] = [
    "payments.payment.succeeded",
    "payments.payment.failed",
    "payments.refund.succeeded",
    "bookkeeping.statement.ready",
    "bookings.booking.confirmed",
    "bookings.booking.released",
    "bookings.booking.cancelled",
    "bookings.booking.refunded",
];

/// What an event asks for, before the recipient is known.
struct Plan {
    template: &'static str,
    category: &'static str,
    recipient_id: RecipientId,
    data: Value,
    /// Money to format in the recipient's locale.
    amount: Option<Money>,
    /// The language the event asks for (wins over the directory's).
    locale: Option<String>,
    /// The notification's key when it is not the event's own
    /// (`event:<source>:<id>`): several events that must give one message.
    key: Option<String>,
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
    money_in(data, "amount")
}

/// `data[field]` in minor units of `data.currency`.
fn money_in(data: &Value, field: &str) -> Result<Money, String> {
    let amount = data[field]
        .as_i64()
        .ok_or_else(|| format!("data.{field} must be an integer (minor units)"))?;
    let currency = Currency::parse(text(data, "currency")?)
        .map_err(|_| "data.currency must be an ISO 4217 code")?;
    Ok(Money::new(amount, currency))
}

/// The participant's language of a booking event, if it is one the
/// directory would accept.
fn booking_locale(data: &Value) -> Result<Option<String>, String> {
    let locale = text(data, "locale")?;
    Ok(crate::domain::valid_locale(locale).then(|| locale.to_owned()))
}

/// What every booking message shows: the booking, its offering and why the
/// saga moved (the templates word the message by `cause`).
fn booking_data(data: &Value) -> Result<Value, String> {
    Ok(json!({
        "booking_id": text(data, "booking_id")?,
        "offering_id": text(data, "offering_id")?,
        "cause": text(data, "cause")?,
    }))
}

/// A booking event (`bookings.booking.*`) to notify about.
fn booking_plan(event_type: &str, data: &Value) -> Result<Option<Plan>, String> {
    let (template, amount, key) = match event_type {
        "bookings.booking.confirmed" => ("booking_confirmed", money(data)?, None),
        "bookings.booking.released" => ("booking_expired", money(data)?, None),
        "bookings.booking.cancelled" | "bookings.booking.refunded" => {
            // What goes back; a policy may give nothing back (0).
            let refund = if data["refund_amount"].is_null() {
                Money::zero(money(data)?.currency())
            } else {
                money_in(data, "refund_amount")?
            };
            let key = format!("booking:{}:cancellation", text(data, "booking_id")?);
            ("booking_cancelled", refund, Some(key))
        }
        _ => return Ok(None),
    };
    let mut fields = booking_data(data)?;
    if let Value::Object(fields) = &mut fields {
        // Whether the refund is under way (cancelled) or done (refunded).
        fields.insert(
            "refunded".into(),
            Value::Bool(event_type == "bookings.booking.refunded"),
        );
    }
    Ok(Some(Plan {
        template,
        category: "bookings",
        recipient_id: recipient_id(data, "participant")?,
        data: fields,
        amount: Some(amount),
        locale: booking_locale(data)?,
        key,
    }))
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
            locale: None,
            key: None,
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
            locale: None,
            key: None,
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
            locale: None,
            key: None,
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
                locale: None,
                key: None,
            }
        }
        booking if booking.starts_with("bookings.booking.") => return booking_plan(booking, data),
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

impl EventHandler<'_> {
    /// Handles `event` delivered from `topic` (`raw` as delivered, for the
    /// dead-letter topic).
    pub async fn handle(&self, topic: &str, event: &CloudEvent<Value>, raw: &Value) -> Outcome {
        match plan(event, &self.settings.links.statements_base_url) {
            Ok(None) => Outcome::Ignored,
            Ok(Some(plan)) => self.notify(topic, event, raw, plan).await,
            Err(reason) => self.reject(topic, event, raw, &reason).await,
        }
    }

    async fn notify(
        &self,
        topic: &str,
        event: &CloudEvent<Value>,
        raw: &Value,
        plan: Plan,
    ) -> Outcome {
        let mut contacts = match recipients::recipient(self.pool, &plan.recipient_id).await {
            Ok(contacts) => contacts.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the recipient directory; asking for redelivery");
                return Outcome::Retry;
            }
        };
        if plan.locale.is_some() {
            contacts.locale = plan.locale;
        }
        let mut data = plan.data;
        if let (Some(money), Value::Object(fields)) = (plan.amount, &mut data) {
            let locale = contacts.locale.as_deref().unwrap_or("en");
            fields.insert("amount".into(), Value::String(money.localized(locale)));
        }
        let trigger = Trigger {
            idempotency_key: plan
                .key
                .unwrap_or_else(|| format!("event:{}:{}", event.source, event.id)),
            request_hash: notifications::sha256_hex(event.data.to_string().as_bytes()),
            origin: "event",
            recipient_id: plan.recipient_id,
            contacts,
            template: plan.template.to_owned(),
            category: plan.category.to_owned(),
            data,
            channels: vec![Channel::Email, Channel::Sms, Channel::Push],
        };
        let draft = match trigger::prepare(
            self.templates,
            &self.settings.categories.critical,
            trigger,
            true,
        ) {
            Ok(draft) => draft,
            // A template that cannot render this event. (NoAddress is not
            // reached: prepare() records undeliverable drafts as `not_sent`.)
            Err(error) => return self.reject(topic, event, raw, &error.to_string()).await,
        };
        let result: Result<Outcome, sqlx::Error> = async {
            let mut tx = platform_db::begin(self.pool).await?;
            if !inbox::claim(&mut tx, &Entry::of(event, topic)).await? {
                return Ok(Outcome::Duplicate);
            }
            let created = match notifications::create(
                &mut tx,
                &draft,
                &self.settings.throttle,
                OverLimit::RecordNotSent,
            )
            .await
            {
                Ok(created) => created,
                Err(CreateError::Database(e)) => return Err(e),
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
                    Outcome::Applied
                }
                Created::Existing(_) => Outcome::Duplicate,
            })
        }
        .await;
        match result {
            Ok(outcome) => {
                self.relay.wake();
                outcome
            }
            Err(error) => {
                tracing::warn!(%error, "event not applied; asking for redelivery");
                Outcome::Retry
            }
        }
    }

    /// Claims the event and puts it with `reason` on `<topic>.deadletter`
    /// (through the outbox, once).
    async fn reject(
        &self,
        topic: &str,
        event: &CloudEvent<Value>,
        raw: &Value,
        reason: &str,
    ) -> Outcome {
        tracing::warn!(reason, "rejecting an event to the dead-letter topic");
        let letter = DeadLetter::new(SERVICE, topic, reason, raw);
        let result: Result<(), sqlx::Error> = async {
            let mut tx = platform_db::begin(self.pool).await?;
            if inbox::claim(&mut tx, &Entry::of(event, topic)).await? {
                outbox::add(
                    &mut tx,
                    OutboxMessage {
                        pubsub: "pubsub",
                        topic: &letter.topic(),
                        event_id: &letter.id_for(&event.source, &event.id),
                        event_type: &letter.event_type(),
                        subject: Some(&event.id),
                        payload: &letter.data(),
                    },
                )
                .await?;
            }
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                self.relay.wake();
                Outcome::Rejected(reason.to_owned())
            }
            Err(error) => {
                tracing::warn!(%error, "cannot record the rejection; asking for redelivery");
                Outcome::Retry
            }
        }
    }
}

#[cfg(test)]
mod contract_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str) -> CloudEvent<Value> {
        CloudEvent::deserialize(json!({
            "specversion": "1.0", "id": "e1", "source": "payments", "type": event_type, "data": {}
        }))
        .unwrap()
    }

    #[test]
    fn the_parking_lot_parks_exactly_the_types_that_become_notifications() {
        for event_type in NOTIFIED_TYPES {
            // Not `Ok(None)`: the type is planned (here rejected, data empty).
            assert!(
                plan(&event(event_type), "http://x").is_err(),
                "{event_type}"
            );
        }
        for ignored in ["payments.payment.created", "payments.payment.updated"] {
            assert!(
                matches!(plan(&event(ignored), "http://x"), Ok(None)),
                "{ignored}"
            );
            assert!(!NOTIFIED_TYPES.contains(&ignored));
        }
    }

    fn booking(event_type: &str, refund_amount: Value) -> CloudEvent<Value> {
        CloudEvent::deserialize(json!({
            "specversion": "1.0", "id": "e2", "source": "bookings", "type": event_type,
            "data": {
                "booking_id": "b-1", "offering_id": "o-1", "participant": "member-1",
                "locale": "de-AT", "amount": 12000, "currency": "EUR", "state": "x",
                "cause": "member_cancelled", "refund_amount": refund_amount,
                "occurred_at": "2026-12-07T08:00:00Z",
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_booking_cancellation_is_one_message_whichever_event_comes_first() {
        let cancelled = plan(&booking("bookings.booking.cancelled", json!(6000)), "x")
            .unwrap()
            .unwrap();
        let refunded = plan(&booking("bookings.booking.refunded", json!(6000)), "x")
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.template, "booking_cancelled");
        assert_eq!(cancelled.key.as_deref(), Some("booking:b-1:cancellation"));
        assert_eq!(cancelled.key, refunded.key);
        assert_eq!(cancelled.amount.unwrap().amount(), 6000);
        assert_eq!(cancelled.data["refunded"], false);
        assert_eq!(refunded.data["refunded"], true);
        // Nothing back under the policy: a zero refund, not a rejection.
        let nothing = plan(&booking("bookings.booking.cancelled", Value::Null), "x")
            .unwrap()
            .unwrap();
        assert_eq!(nothing.amount.unwrap().amount(), 0);
    }

    #[test]
    fn booking_messages_use_the_bookings_language_and_their_own_event_key() {
        for (event_type, template) in [
            ("bookings.booking.confirmed", "booking_confirmed"),
            ("bookings.booking.released", "booking_expired"),
        ] {
            let plan = plan(&booking(event_type, Value::Null), "x")
                .unwrap()
                .unwrap();
            assert_eq!(plan.template, template);
            assert_eq!(plan.category, "bookings");
            assert_eq!(plan.locale.as_deref(), Some("de-AT"));
            assert_eq!(plan.key, None);
            assert_eq!(plan.recipient_id.as_str(), "member-1");
            assert_eq!(plan.amount.unwrap().amount(), 12000);
        }
        // A reservation is not a message; offerings neither.
        for ignored in ["bookings.booking.reserved", "bookings.offering.created"] {
            assert!(matches!(
                plan(&booking(ignored, Value::Null), "x"),
                Ok(None)
            ));
        }
    }
}
