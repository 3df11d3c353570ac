//! Statement export API and the subscription route that hands queued jobs
//! to the export worker ([`crate::jobs::statement_export`]).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_auth_token::{AccessClaims, Authenticated};
use platform_consumer::{CloudEvent, TopicResponse};
use platform_problem::{Json, Problem};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use crate::error::BookkeepingError;
use crate::jobs::statement_export::{Accepted, StatementJob};
use crate::ledger::EntryError;
use crate::statements::{NewStatement, Statement, StatementStatus, download};

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

/// `POST /v1/statements`: records the job and queues it; 202 with its id.
pub(crate) async fn request(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Json(mut new): Json<NewStatement>,
) -> Result<(StatusCode, Json<StatementBody>), BookkeepingError> {
    new.owner_client_id = Some(caller.client_id.clone());
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
    let (statement, _created) = state.statement_exports.request(&new).await?;
    Ok((StatusCode::ACCEPTED, Json(statement.into())))
}

/// The scope that reads every client's statements (ADR 0028).
pub(crate) const ADMIN_SCOPE: &str = "bookkeeping:admin";

/// Another client's statement is 404, as an unknown id (ADR 0028).
fn visible(statement: &Statement, caller: &AccessClaims) -> bool {
    statement.visible_to(&caller.client_id, caller.has_scope(ADMIN_SCOPE))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<StatementBody>, BookkeepingError> {
    let id = Uuid::parse_str(&id).map_err(|_| BookkeepingError::NotFound("statement"))?;
    let statement = state
        .statements
        .get(id)
        .await?
        .filter(|s| visible(s, &caller))
        .ok_or(BookkeepingError::NotFound("statement"))?;
    Ok(Json(statement.into()))
}

/// `GET /v1/statements/{id}/download`: the CSV, streamed part by part.
pub(crate) async fn download(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return BookkeepingError::NotFound("statement").into_response();
    };
    let statement = match state.statements.get(id).await {
        Ok(Some(statement)) if visible(&statement, &caller) => statement,
        Ok(_) => return BookkeepingError::NotFound("statement").into_response(),
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
    let stream = download::parts(state.sidecar.clone(), id, statement.parts);
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

/// Subscription route for `bookkeeping.statements`: the export worker
/// claims the job and runs it in the background; the message is
/// acknowledged at once.
pub(crate) async fn worker(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> TopicResponse {
    let Ok(event) = serde_json::from_slice::<CloudEvent<StatementJob>>(&body) else {
        tracing::warn!("dropping a statement job that is not a CloudEvent with a statement_id");
        return TopicResponse::Drop;
    };
    match state
        .statement_exports
        .accept(event.data.statement_id)
        .await
    {
        Accepted::Started | Accepted::Taken => TopicResponse::Success,
        Accepted::Retry => TopicResponse::Retry,
    }
}
