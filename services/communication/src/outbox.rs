//! The outbox relay: publishes what transactions wrote to the `outbox`
//! table (send jobs, status events, dead letters) through the sidecar, then
//! deletes it. Rows go out in bulk (one sidecar call per topic and chunk).
//! A message is published at least once; consumers deduplicate on the
//! CloudEvent id the row carries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use platform_dapr::{OutgoingEvent, Sidecar};
use platform_server::StopSignal;
use serde_json::Value;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::settings::RelaySettings;

/// The CloudEvent `source` of everything communication publishes (its app id).
pub const SOURCE: &str = "communication";

/// Entries per bulk publish call.
const CHUNK: usize = 100;

#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
    sidecar: Sidecar,
    wake: Arc<Notify>,
    settings: RelaySettings,
}

struct Message {
    id: i64,
    pubsub: String,
    topic: String,
    event_id: String,
    event_type: String,
    subject: Option<String>,
    payload: Value,
    created_at: OffsetDateTime,
}

fn message_from_row(r: &sqlx::postgres::PgRow) -> Message {
    Message {
        id: r.get("id"),
        pubsub: r.get("pubsub"),
        topic: r.get("topic"),
        event_id: r.get("event_id"),
        event_type: r.get("event_type"),
        subject: r.get("subject"),
        payload: r.get("payload"),
        created_at: r.get("created_at"),
    }
}

impl Relay {
    pub fn new(pool: PgPool, sidecar: Sidecar, settings: RelaySettings) -> Self {
        Self {
            pool,
            sidecar,
            wake: Arc::new(Notify::new()),
            settings,
        }
    }

    /// Call after committing outbox rows: they are published at once
    /// instead of at the next interval.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `stop` fires (after the server drained its requests).
    pub async fn run(self, mut stop: StopSignal) {
        let interval = Duration::from_millis(self.settings.interval_ms);
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
                () = stop.stopped() => {
                    // One last round for what the final requests committed.
                    let _ = self.publish_batch().await;
                    tracing::info!("outbox relay stopped");
                    return;
                }
            }
            loop {
                match self.publish_batch().await {
                    Ok(n) if n as i64 >= self.settings.batch => continue,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "outbox relay failed; retrying at the next interval");
                        break;
                    }
                }
            }
        }
    }

    /// Publishes up to `batch` rows (locked, so replicas share the work) and
    /// deletes those the sidecar accepted. Returns how many rows were taken.
    pub async fn publish_batch(&self) -> Result<usize, sqlx::Error> {
        let mut tx = platform_db::begin(&self.pool).await?;
        let rows = sqlx::query(
            "SELECT id, pubsub, topic, event_id, event_type, subject, payload, created_at FROM outbox
              ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(self.settings.batch)
        .fetch_all(&mut *tx)
        .await?;
        let taken = rows.len();
        if taken == 0 {
            return Ok(0);
        }
        let messages: Vec<Message> = rows.iter().map(message_from_row).collect();
        let mut groups: HashMap<(String, String), Vec<Message>> = HashMap::new();
        for message in messages {
            groups
                .entry((message.pubsub.clone(), message.topic.clone()))
                .or_default()
                .push(message);
        }
        let mut calls = Vec::new();
        for ((pubsub, topic), mut messages) in groups {
            while !messages.is_empty() {
                let rest = messages.split_off(messages.len().min(CHUNK));
                calls.push((pubsub.clone(), topic.clone(), messages));
                messages = rest;
            }
        }
        let published: Vec<i64> = futures::stream::iter(calls)
            .map(|(pubsub, topic, messages)| self.publish(pubsub, topic, messages))
            .buffer_unordered(self.settings.concurrency)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
            .bind(&published)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        metrics::counter!("outbox_published_total").increment(published.len() as u64);
        Ok(taken)
    }

    /// Publishes one chunk; returns the ids of the rows the sidecar took.
    async fn publish(&self, pubsub: String, topic: String, messages: Vec<Message>) -> Vec<i64> {
        let ids: Vec<i64> = messages.iter().map(|m| m.id).collect();
        let events = messages
            .into_iter()
            .map(|mut m| {
                // A job queued inside a trace continues it: its W3C
                // traceparent, kept with the row, goes on the CloudEvent,
                // not in the data. The envelope is ours (ADR 0040): the
                // time the row was written, to the microsecond.
                let traceparent = match m
                    .payload
                    .as_object_mut()
                    .and_then(|o| o.remove("traceparent"))
                {
                    Some(Value::String(traceparent)) => Some(traceparent),
                    _ => None,
                };
                let mut event = OutgoingEvent::new(m.event_id, SOURCE, m.event_type, m.payload)
                    .at(m.created_at)
                    .in_trace(traceparent);
                event.subject = m.subject;
                (m.id.to_string(), event)
            })
            .collect();
        let failed = self
            .sidecar
            .bulk_publish_events(&pubsub, &topic, events)
            .await;
        ids.into_iter()
            .filter(|id| !failed.contains(&id.to_string()))
            .collect()
    }
}
