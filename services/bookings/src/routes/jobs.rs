//! `POST /job/{name}`: the Dapr scheduler fires a job through the sidecar
//! (ADR 0037). A 2xx ends the job; anything else makes the job's failure
//! policy fire it again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use tracing::instrument;
use uuid::Uuid;

use super::AppState;

#[instrument(name = "jobs.fire", skip_all, fields(job = %name))]
pub(super) async fn fire(State(state): State<AppState>, Path(name): Path<String>) -> StatusCode {
    let result = if let Some(id) = name.strip_prefix("booking-hold-") {
        let Ok(id) = Uuid::parse_str(id) else {
            return StatusCode::NOT_FOUND;
        };
        state.saga.expire(id).await.map(|applied| {
            tracing::info!(?applied, "hold deadline handled");
        })
    } else if let Some(id) = name.strip_prefix("offering-cancel-") {
        let Ok(id) = Uuid::parse_str(id) else {
            return StatusCode::NOT_FOUND;
        };
        state.saga.run_offering_cancellation(id).await.map(|moved| {
            tracing::info!(bookings = moved, "organiser cancellation batch done");
        })
    } else {
        tracing::warn!("unknown job");
        return StatusCode::NOT_FOUND;
    };
    match result {
        Ok(()) => StatusCode::OK,
        Err(error) => {
            tracing::warn!(%error, "job failed; the scheduler fires it again");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
