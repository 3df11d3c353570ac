//! The statement export worker: queues a requested statement on the
//! `bookkeeping.statements` topic, takes a delivered job (the subscription
//! route hands it over), runs the export in the background with bounded
//! concurrency and announces the result; and the sweep that queues again
//! what nobody works on ([`super::statement_sweeper`]).
//!
//! A delivered job is acknowledged at once; a crash mid-export leaves the
//! job `running` with a stale heartbeat, and the sweep queues it again.

use std::sync::Arc;

use platform_dapr::{OutgoingEvent, Sidecar};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::ledger::StoreError;
use crate::settings::StatementSettings;
use crate::statements::export::Written;
use crate::statements::{
    EVENTS_TOPIC, JOBS_TOPIC, NewStatement, READY_TYPE, Statement, Statements, export,
};

const PUBSUB: &str = "pubsub";

/// The CloudEvent `source` of everything bookkeeping publishes (its app id).
const SOURCE: &str = "bookkeeping";

/// The job's CloudEvent type on the internal `bookkeeping.statements` topic.
pub(crate) const REQUESTED_TYPE: &str = "bookkeeping.statement.requested";

/// The job message for statement `id` (contracts/events/bookkeeping.statement.requested.schema.json).
fn requested_event(id: Uuid) -> OutgoingEvent {
    OutgoingEvent::new(
        Uuid::now_v7().to_string(),
        SOURCE,
        REQUESTED_TYPE,
        serde_json::to_value(StatementJob { statement_id: id }).unwrap_or_default(),
    )
    .subject(id.to_string())
}

/// `bookkeeping.statement.ready` for an export that wrote `written`. Its id
/// is stable per statement: an export redone after a crash announces the
/// same event again, which consumers deduplicate.
fn ready_event(statement: &Statement, written: Written) -> OutgoingEvent {
    let rfc3339 = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    OutgoingEvent::new(
        format!("statement-ready-{}", statement.id),
        SOURCE,
        READY_TYPE,
        json!({
            "statement_id": statement.id,
            "account_id": statement.account_id,
            "from": rfc3339(statement.from),
            "to": rfc3339(statement.to),
            "format": statement.format,
            "rows": written.rows,
            "bytes": written.bytes,
            "download_path": format!("/v1/statements/{}/download", statement.id),
        }),
    )
    .subject(statement.id.to_string())
}

/// The job message on `bookkeeping.statements`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StatementJob {
    pub(crate) statement_id: Uuid,
}

/// What became of a delivered job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// Claimed here; the export runs in the background.
    Started,
    /// Another worker has it, or it is done.
    Taken,
    /// It could not be claimed now; deliver it again.
    Retry,
}

#[derive(Debug, Clone)]
pub(crate) struct StatementExports {
    pool: PgPool,
    sidecar: Sidecar,
    statements: Statements,
    settings: StatementSettings,
    slots: Arc<Semaphore>,
}

impl StatementExports {
    pub(crate) fn new(
        pool: PgPool,
        sidecar: Sidecar,
        statements: Statements,
        settings: StatementSettings,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(settings.concurrency));
        Self {
            pool,
            sidecar,
            statements,
            settings,
            slots,
        }
    }

    /// Records the job and queues it; `(statement, created)`. A failed
    /// publish is not the client's problem: the job is recorded and the
    /// sweep publishes it again.
    pub(crate) async fn request(
        &self,
        new: &NewStatement,
    ) -> Result<(Statement, bool), StoreError> {
        let (statement, created) = self.statements.create(new).await?;
        if created {
            self.publish(statement.id).await;
        }
        Ok((statement, created))
    }

    async fn publish(&self, id: Uuid) {
        if let Err(error) = self
            .sidecar
            .publish_event(PUBSUB, JOBS_TOPIC, &requested_event(id))
            .await
        {
            tracing::warn!(%error, statement.id = %id, "cannot queue the statement job now; the sweeper will");
        }
    }

    /// Claims the job and starts its export in the background (at most
    /// `statements.concurrency` at once).
    pub(crate) async fn accept(&self, id: Uuid) -> Accepted {
        let claimed = match self
            .statements
            .claim(id, self.settings.stale_after_secs)
            .await
        {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, statement.id = %id, "cannot claim the statement job");
                return Accepted::Retry;
            }
        };
        let Some(statement) = claimed else {
            tracing::debug!(statement.id = %id, "statement job already taken or done");
            return Accepted::Taken;
        };
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return Accepted::Retry;
        };
        let exports = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            exports.run(statement).await;
        });
        Accepted::Started
    }

    #[tracing::instrument(name = "statements.export", skip_all, fields(statement.id = %statement.id))]
    async fn run(&self, statement: Statement) {
        let started = std::time::Instant::now();
        let result = export::run(&self.pool, &self.sidecar, &self.statements, &statement).await;
        let written = match result {
            Ok(written) => written,
            Err(error) => {
                tracing::warn!(%error, "statement export failed");
                if let Err(error) = self.fail(statement.id, &error.to_string()).await {
                    tracing::error!(%error, "cannot record the failed export");
                }
                return;
            }
        };
        // Announce first, then mark ready: if marking fails the job is redone
        // and announced again with the same CloudEvent id, which consumers
        // dedupe.
        if let Err(error) = self
            .sidecar
            .publish_event(PUBSUB, EVENTS_TOPIC, &ready_event(&statement, written))
            .await
        {
            tracing::warn!(%error, "cannot announce the statement; it will be redone");
            let _ = self.fail(statement.id, &error.to_string()).await;
            return;
        }
        if let Err(error) = self.statements.finish(statement.id, written).await {
            tracing::error!(%error, "cannot mark the statement ready; it will be redone");
            return;
        }
        tracing::info!(
            rows = written.rows,
            parts = written.parts,
            bytes = written.bytes,
            duration_ms = started.elapsed().as_millis(),
            "statement ready"
        );
    }

    async fn fail(&self, id: Uuid, error: &str) -> Result<(), StoreError> {
        self.statements
            .fail(id, error, self.settings.max_attempts)
            .await
    }

    /// Publishes again the jobs nobody works on: queued for longer than
    /// `statements.requeue_after_secs`, or running without a heartbeat for
    /// `statements.stale_after_secs`. Harmless in every replica: the claim
    /// decides who works.
    pub(crate) async fn requeue_pending(&self) -> Result<(), StoreError> {
        let ids = self
            .statements
            .pending(
                self.settings.requeue_after_secs,
                self.settings.stale_after_secs,
            )
            .await?;
        for id in ids {
            tracing::info!(statement.id = %id, "re-queuing a statement job");
            self.publish(id).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statements::StatementStatus;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn published(event: &OutgoingEvent, topic: &str) -> serde_json::Value {
        let mut envelope = event.envelope();
        // What daprd adds on the way (structured mode keeps the rest).
        envelope["topic"] = topic.into();
        envelope["pubsubname"] = PUBSUB.into();
        envelope
    }

    /// The events bookkeeping publishes match their contracts
    /// (contracts/events/envelope.schema.json and the type's schema).
    #[test]
    fn the_statement_events_match_their_contracts() {
        let statement = Statement {
            id: Uuid::now_v7(),
            account_id: Uuid::new_v4(),
            from: at(1_793_491_200),
            to: at(1_796_083_200),
            format: "csv".to_owned(),
            status: StatementStatus::Running,
            attempts: 1,
            parts: 0,
            rows: 0,
            bytes: 0,
            error: None,
            requested_at: at(1_796_634_000),
            completed_at: None,
            owner_client_id: None,
        };
        let written = Written {
            parts: 2,
            rows: 412,
            bytes: 38_211,
        };
        let ready = ready_event(&statement, written);
        assert_eq!(ready.id, format!("statement-ready-{}", statement.id));
        platform_event_contracts::assert_valid_envelope(&published(&ready, EVENTS_TOPIC));
        let requested = requested_event(statement.id);
        platform_event_contracts::assert_valid_envelope(&published(&requested, JOBS_TOPIC));
    }
}
