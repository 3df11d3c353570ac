//! Self-registration of end users.

use axum::extract::State;
use axum::http::StatusCode;
use platform_problem::Json;
use secrecy::SecretString;
use serde::Deserialize;
use tracing::instrument;

use super::AppState;
use crate::error::AuthError;
use crate::users::User;

#[derive(Debug, Deserialize)]
pub struct Registration {
    username: String,
    password: SecretString,
}

#[instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    Json(body): Json<Registration>,
) -> Result<(StatusCode, Json<User>), AuthError> {
    let user = state.users.register(&body.username, &body.password).await?;
    Ok((StatusCode::CREATED, Json(user)))
}
