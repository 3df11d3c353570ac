//! The recipient directory (`/v1/recipients/{id}`) and preferences
//! (`/v1/recipients/{id}/preferences`).

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use platform_problem::Json;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::domain::{self, Contacts, ContactsRequest, RecipientId};
use crate::error::CommunicationError;
use crate::store::recipients::{self, Preference};

fn recipient_id(id: &str) -> Result<RecipientId, CommunicationError> {
    RecipientId::parse(id).ok_or(CommunicationError::NotFound("recipient"))
}

#[derive(Debug, Serialize)]
pub(crate) struct RecipientBody {
    id: RecipientId,
    #[serde(flatten)]
    contacts: Contacts,
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(contacts): Json<ContactsRequest>,
) -> Result<Json<RecipientBody>, CommunicationError> {
    let id = recipient_id(&id)?;
    let contacts = contacts
        .parse()
        .map_err(|(field, reason)| CommunicationError::invalid(field, reason))?;
    recipients::put_recipient(&state.pool, &id, &contacts).await?;
    let contacts = recipients::recipient(&state.pool, &id)
        .await?
        .ok_or(CommunicationError::NotFound("recipient"))?;
    Ok(Json(RecipientBody { id, contacts }))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecipientBody>, CommunicationError> {
    let id = recipient_id(&id)?;
    let contacts = recipients::recipient(&state.pool, &id)
        .await?
        .ok_or(CommunicationError::NotFound("recipient"))?;
    Ok(Json(RecipientBody { id, contacts }))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Preferences {
    preferences: Vec<Preference>,
    /// Categories sent regardless of opt-outs (read only).
    #[serde(default, skip_deserializing)]
    critical_categories: Vec<String>,
}

pub(crate) async fn put_preferences(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Preferences>,
) -> Result<(StatusCode, Json<Preferences>), CommunicationError> {
    let id = recipient_id(&id)?;
    let mut seen = HashSet::new();
    for (i, p) in body.preferences.iter().enumerate() {
        if !domain::valid_category(&p.category) {
            return Err(CommunicationError::invalid(
                format!("preferences[{i}].category"),
                "lowercase letters, digits and _, starting with a letter",
            ));
        }
        if !seen.insert((p.category.clone(), p.channel)) {
            return Err(CommunicationError::invalid(
                format!("preferences[{i}]"),
                "category and channel given twice",
            ));
        }
    }
    recipients::put_preferences(&state.pool, &id, &body.preferences).await?;
    Ok((
        StatusCode::OK,
        Json(Preferences {
            preferences: recipients::preferences(&state.pool, &id).await?,
            critical_categories: state.settings.categories.critical.clone(),
        }),
    ))
}

pub(crate) async fn get_preferences(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Preferences>, CommunicationError> {
    let id = recipient_id(&id)?;
    Ok(Json(Preferences {
        preferences: recipients::preferences(&state.pool, &id).await?,
        critical_categories: state.settings.categories.critical.clone(),
    }))
}
