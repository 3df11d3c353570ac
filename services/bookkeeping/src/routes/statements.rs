//! Statement export API and the job worker (a pub/sub subscription).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_consumer::{CloudEvent, TopicResponse};
use platform_problem::{Json, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use crate::error::BookkeepingError;
use crate::ledger::EntryError;
use crate::statements::{
    EVENTS_TOPIC, JOBS_TOPIC, NewStatement, READY_TYPE, STORAGE_BINDING, Statement,
    StatementStatus, export, part_name,
};

const PUBSUB: &str = "pubsub";

#[derive(Debug, Serialize)]
pub(crate) struct StatementBody {
    #[serde(flatten)]
    statement: Statement,
    links: HashMap<&'static str, String>,
}

impl From<Statement> for StatementBody {
    fn from(statement: Statement) -> Self {
        let mut links = HashMap::from([("self", format!("/v1/statements/{}", statement.id))]);
        if statement.status == StatementStatus::Ready {
            links.insert(
                "download",
                format!("/v1/statements/{}/download", statement.id),
            );
        }
        Self { statement, links }
    }
}

/// The job message on `bookkeeping.statements`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StatementJob {
    statement_id: Uuid,
}

/// `POST /v1/statements`: records the job and queues it; 202 with its id.
pub(crate) async fn request(
    State(state): State<AppState>,
    Json(new): Json<NewStatement>,
) -> Result<(StatusCode, Json<StatementBody>), BookkeepingError> {
    if new.format != "csv" {
        return Err(EntryError {
            field: "format".into(),
            reason: "only csv is supported".into(),
        }
        .into());
    }
    if new.from >= new.to {
        return Err(EntryError {
            field: "to".into(),
            reason: "must be after from".into(),
        }
        .into());
    }
    let (statement, created) = state.statements.create(&new).await?;
    if created {
        // A failed publish is not the client's problem: the job is recorded
        // and the sweeper publishes it again.
        publish_job(&state, statement.id).await;
    }
    Ok((StatusCode::ACCEPTED, Json(statement.into())))
}

pub(crate) async fn publish_job(state: &AppState, id: Uuid) {
    let body = serde_json::to_vec(&StatementJob { statement_id: id }).unwrap_or_default();
    let metadata = HashMap::from([(
        "cloudevent.type".to_owned(),
        "bookkeeping.statement.requested".to_owned(),
    )]);
    if let Err(error) = state
        .sidecar
        .publish_json(PUBSUB, JOBS_TOPIC, body, metadata)
        .await
    {
        tracing::warn!(%error, statement.id = %id, "cannot queue the statement job now; the sweeper will");
    }
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StatementBody>, BookkeepingError> {
    let id = Uuid::parse_str(&id).map_err(|_| BookkeepingError::NotFound("statement"))?;
    let statement = state
        .statements
        .get(id)
        .await?
        .ok_or(BookkeepingError::NotFound("statement"))?;
    Ok(Json(statement.into()))
}

/// `GET /v1/statements/{id}/download`: the CSV, streamed part by part.
pub(crate) async fn download(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return BookkeepingError::NotFound("statement").into_response();
    };
    let statement = match state.statements.get(id).await {
        Ok(Some(statement)) => statement,
        Ok(None) => return BookkeepingError::NotFound("statement").into_response(),
        Err(error) => return BookkeepingError::from(error).into_response(),
    };
    if statement.status != StatementStatus::Ready {
        return Problem::new(
            StatusCode::CONFLICT,
            "statement_not_ready",
            "The statement is not ready yet",
        )
        .with_extension("status", json!(statement.status))
        .into_response();
    }
    let sidecar = state.sidecar.clone();
    let parts = statement.parts;
    let stream = futures::stream::unfold(1, move |n| {
        let sidecar = sidecar.clone();
        async move {
            if n > parts {
                return None;
            }
            let metadata = HashMap::from([("fileName".to_owned(), part_name(id, n))]);
            let part = sidecar
                .invoke_binding(STORAGE_BINDING, "get", Vec::new(), metadata)
                .await;
            Some((part.map_err(std::io::Error::other), n + 1))
        }
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"statement-{id}.csv\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Subscription route for `bookkeeping.statements`: claims the job and runs
/// the export in the background (bounded concurrency). The message is
/// acknowledged at once; a crash mid-export leaves the job `running` with a
/// stale heartbeat, and the sweeper queues it again.
pub(crate) async fn worker(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> TopicResponse {
    let Ok(event) = serde_json::from_slice::<CloudEvent<StatementJob>>(&body) else {
        tracing::warn!("dropping a statement job that is not a CloudEvent with a statement_id");
        return TopicResponse::Drop;
    };
    let id = event.data.statement_id;
    let claimed = match state
        .statements
        .claim(id, state.statement_settings.stale_after_secs)
        .await
    {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, statement.id = %id, "cannot claim the statement job");
            return TopicResponse::Retry;
        }
    };
    let Some(statement) = claimed else {
        tracing::debug!(statement.id = %id, "statement job already taken or done");
        return TopicResponse::Success;
    };
    let Ok(permit) = state.export_slots.clone().acquire_owned().await else {
        return TopicResponse::Retry;
    };
    tokio::spawn(async move {
        let _permit = permit;
        run_export(&state, statement).await;
    });
    TopicResponse::Success
}

#[tracing::instrument(name = "statements.export", skip_all, fields(statement.id = %statement.id))]
async fn run_export(state: &AppState, statement: Statement) {
    let started = std::time::Instant::now();
    let result = export::run(&state.pool, &state.sidecar, &state.statements, &statement).await;
    let written = match result {
        Ok(written) => written,
        Err(error) => {
            tracing::warn!(%error, "statement export failed");
            if let Err(error) = state
                .statements
                .fail(
                    statement.id,
                    &error.to_string(),
                    state.statement_settings.max_attempts,
                )
                .await
            {
                tracing::error!(%error, "cannot record the failed export");
            }
            return;
        }
    };
    // Announce first, then mark ready: if marking fails the job is redone and
    // announced again with the same CloudEvent id, which consumers dedupe.
    let ready = json!({
        "statement_id": statement.id,
        "account_id": statement.account_id,
        "from": statement.from.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "to": statement.to.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "format": statement.format,
        "rows": written.rows,
        "bytes": written.bytes,
        "download_path": format!("/v1/statements/{}/download", statement.id),
    });
    let metadata = HashMap::from([
        (
            "cloudevent.id".to_owned(),
            format!("statement-ready-{}", statement.id),
        ),
        ("cloudevent.type".to_owned(), READY_TYPE.to_owned()),
        ("cloudevent.subject".to_owned(), statement.id.to_string()),
    ]);
    let body = serde_json::to_vec(&ready).unwrap_or_default();
    if let Err(error) = state
        .sidecar
        .publish_json(PUBSUB, EVENTS_TOPIC, body, metadata)
        .await
    {
        tracing::warn!(%error, "cannot announce the statement; it will be redone");
        let _ = state
            .statements
            .fail(
                statement.id,
                &error.to_string(),
                state.statement_settings.max_attempts,
            )
            .await;
        return;
    }
    if let Err(error) = state
        .statements
        .finish(statement.id, written.parts, written.rows, written.bytes)
        .await
    {
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

/// Republishes jobs nobody is working on, every `interval`, until the process
/// ends. Harmless to run in every replica: the claim decides who works.
pub(crate) async fn sweep(state: AppState, interval: Duration) {
    let settings = state.statement_settings.clone();
    loop {
        tokio::time::sleep(interval).await;
        match state
            .statements
            .pending(settings.requeue_after_secs, settings.stale_after_secs)
            .await
        {
            Ok(ids) => {
                for id in ids {
                    tracing::info!(statement.id = %id, "re-queuing a statement job");
                    publish_job(&state, id).await;
                }
            }
            Err(error) => tracing::warn!(%error, "statement sweep failed"),
        }
    }
}
