//! Dapr's Jobs API (the scheduler): a job fires once at its due time and
//! the sidecar delivers it to the app as `POST /job/<name>` with the job's
//! data as the JSON body; a non-2xx answer is retried by the job's failure
//! policy. Over HTTP because the HTTP API takes the data as plain JSON
//! (`google.protobuf.Value`), which is what arrives at the app unchanged
//! (daprd 1.18, `pkg/channel/http/http_channel.go`).

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use tracing::instrument;

use crate::{Sidecar, SidecarError};

#[derive(Serialize)]
struct JobBody<'a> {
    #[serde(rename = "dueTime")]
    due_time: String,
    data: &'a Value,
    /// Scheduling the same name again replaces the job: a retried schedule
    /// is idempotent.
    overwrite: bool,
}

impl Sidecar {
    /// Schedules job `name` (no `|`) to fire once at `due` (RFC 3339, or
    /// a Go duration such as `15m`), delivering `data`. Scheduling an
    /// existing name replaces it.
    #[instrument(name = "dapr.jobs.schedule", skip_all, fields(dapr.job = name))]
    pub async fn schedule_job(
        &self,
        name: &str,
        due: &str,
        data: &Value,
    ) -> Result<(), SidecarError> {
        let due_time = due.to_owned();
        let response = self
            .http(Method::POST, &format!("/v1.0/jobs/{name}"))
            .json(&JobBody {
                due_time,
                data,
                overwrite: true,
            })
            .send()
            .await?;
        answer(response).await
    }

    /// Deletes job `name`; a job that does not exist (fired, or never
    /// scheduled) is not an error.
    #[instrument(name = "dapr.jobs.delete", skip_all, fields(dapr.job = name))]
    pub async fn delete_job(&self, name: &str) -> Result<(), SidecarError> {
        let response = self
            .http(Method::DELETE, &format!("/v1.0/jobs/{name}"))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(());
        }
        answer(response).await
    }
}

async fn answer(response: reqwest::Response) -> Result<(), SidecarError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(if status.is_server_error() {
        SidecarError::Unavailable(format!("jobs API answered {status}: {body}"))
    } else {
        SidecarError::Rejected(format!("jobs API answered {status}: {body}"))
    })
}
