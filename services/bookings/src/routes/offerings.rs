//! Offerings: the administrators' API and the public catalogue.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform_problem::Json;
use serde::Deserialize;
use time::OffsetDateTime;
use tracing::instrument;
use uuid::Uuid;

use super::AppState;
use crate::catalogue::parse_cursor;
use crate::domain::{OfferingInput, OfferingKind, OfferingSpec};
use crate::error::BookingsError;
use crate::store::offerings::{CatalogueQuery, Offering};

pub(super) fn parse_id(id: &str, what: &'static str) -> Result<Uuid, BookingsError> {
    Uuid::parse_str(id).map_err(|_| BookingsError::NotFound(what))
}

#[instrument(name = "offerings.create", skip_all)]
pub(super) async fn create(
    State(state): State<AppState>,
    Json(input): Json<OfferingInput>,
) -> Result<(StatusCode, Json<Offering>), BookingsError> {
    let spec = OfferingSpec::parse(input)?;
    let offering = state.catalogue.create(&spec).await?;
    Ok((StatusCode::CREATED, Json(offering)))
}

#[instrument(name = "offerings.replace", skip_all, fields(offering.id = %id))]
pub(super) async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(input): Json<OfferingInput>,
) -> Result<Json<Offering>, BookingsError> {
    let id = parse_id(&id, "offering")?;
    let spec = OfferingSpec::parse(input)?;
    Ok(Json(state.catalogue.replace(id, &spec).await?))
}

#[instrument(name = "offerings.cancel", skip_all, fields(offering.id = %id))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, BookingsError> {
    let id = parse_id(&id, "offering")?;
    state.saga.cancel_offering(id).await?;
    Ok(StatusCode::ACCEPTED)
}

#[instrument(name = "offerings.get", skip_all, fields(offering.id = %id))]
pub(super) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Offering>, BookingsError> {
    let id = parse_id(&id, "offering")?;
    state
        .catalogue
        .get(id)
        .await?
        .map(Json)
        .ok_or(BookingsError::NotFound("offering"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    kind: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    from: Option<OffsetDateTime>,
    #[serde(default)]
    available: bool,
    cursor: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/offerings?kind=&from=&available=&cursor=&limit=`: cached
/// (ADR 0038), with a strong ETag (`If-None-Match` → 304) and
/// `Cache-Control: public, max-age=<ttl>`; `Cache-Control: no-cache` on the
/// request bypasses the shared cache.
#[instrument(name = "offerings.list", skip_all)]
pub(super) async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, BookingsError> {
    let Query(params) = params.map_err(|e| BookingsError::invalid("query", e.body_text()))?;
    if let Some(kind) = &params.kind {
        OfferingKind::parse(kind)?;
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(BookingsError::invalid("limit", "must be 1..=100"));
    }
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| {
                BookingsError::invalid("cursor", "is not a cursor of this catalogue")
            })
        })
        .transpose()?;
    let query = CatalogueQuery {
        kind: params.kind,
        from: params.from,
        available: params.available,
        after,
        limit,
    };
    let bypass = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-cache"));
    let page = state.catalogue.page(&query, bypass).await?;
    let cache_control = format!("public, max-age={}", state.catalogue.max_age_secs());
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == page.etag || tag.trim() == "*")
        }) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(page.body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let headers = response.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&page.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(value) = HeaderValue::from_str(&cache_control) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    headers.insert(
        "x-cache",
        HeaderValue::from_static(if page.from_cache { "hit" } else { "miss" }),
    );
    Ok(response)
}
