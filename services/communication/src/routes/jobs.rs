//! The routes Dapr delivers send jobs to (`communication.sends` and its
//! dead-letter topic): they read the CloudEvent and hand the notification
//! id to the send worker ([`crate::jobs::send_worker`]).

use axum::body::Bytes;
use axum::extract::State;
use platform_consumer::{CloudEvent, TopicResponse};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use crate::jobs::send_worker::SendWorker;
use crate::store::sends;

#[derive(Debug, Deserialize)]
pub(crate) struct SendJob {
    notification_id: Uuid,
}

#[tracing::instrument(name = "jobs.send", skip_all, fields(notification.id))]
pub(crate) async fn send(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    let Ok(job) = serde_json::from_slice::<CloudEvent<SendJob>>(&body) else {
        tracing::warn!("dropping a send job that is not a CloudEvent with a notification_id");
        return TopicResponse::Drop;
    };
    let id = job.data.notification_id;
    tracing::Span::current().record("notification.id", id.to_string());
    state.send_worker().send(id).await
}

/// Dead-letter consumer: a send job Dapr gave up on after its retries.
#[tracing::instrument(name = "jobs.send_failed", skip_all)]
pub(crate) async fn send_failed(State(state): State<AppState>, body: Bytes) -> TopicResponse {
    let Ok(event) = serde_json::from_slice::<CloudEvent<Value>>(&body) else {
        return TopicResponse::Drop;
    };
    let Some(id) = event.data["notification_id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return TopicResponse::Drop;
    };
    if event.event_type != sends::SEND_JOB_TYPE {
        return TopicResponse::Success;
    }
    state.send_worker().dead_lettered(id).await
}

impl AppState {
    fn send_worker(&self) -> SendWorker<'_> {
        SendWorker {
            pool: &self.pool,
            sender: &self.sender,
            relay: &self.relay,
            max_attempts: self.settings.sending.max_attempts,
            give_up_after_secs: self.settings.sending.give_up_after_secs,
            stale_after_secs: self.settings.sending.stale_after_secs,
        }
    }
}
