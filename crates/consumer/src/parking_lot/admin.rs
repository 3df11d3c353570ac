//! The parking lot's operator API, the same in every consumer (its
//! contract: `components/schemas/ParkedLetter` and the `/v1/admin/parked-letters`
//! paths of the service's contracts/openapi file). The service puts it
//! behind its `<service>:admin` scope:
//!
//! | route | does |
//! |---|---|
//! | `GET /v1/admin/parked-letters?status=parked&after=&limit=` | one page, oldest first; `next` is the cursor of the next page |
//! | `GET /v1/admin/parked-letters/{id}` | one letter with its event |
//! | `POST /v1/admin/parked-letters/{id}/redrive` | applies it now, poison included |
//! | `POST /v1/admin/parked-letters/redrive` | re-drives every parked letter |

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use platform_problem::Problem;
use serde_json::json;

use super::{ParkingLot, Redrive, Settled};

const MAX_PAGE: i64 = 100;

/// The operator routes over `lot`; the caller adds the scope check.
pub fn router<R: Redrive>(lot: ParkingLot<R>) -> Router {
    Router::new()
        .route("/v1/admin/parked-letters", get(list::<R>))
        .route("/v1/admin/parked-letters/redrive", post(redrive_all::<R>))
        .route("/v1/admin/parked-letters/{id}", get(show::<R>))
        .route(
            "/v1/admin/parked-letters/{id}/redrive",
            post(redrive_one::<R>),
        )
        .with_state(lot)
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "The query parameters are not valid",
    )
    .with_detail(detail)
}

/// A letter id from the path; one that is not an id names no letter (404).
fn letter_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "letter_not_found",
        "No parked letter has this id",
    )
}

fn database(error: &sqlx::Error) -> Problem {
    platform_server::database::problem(error)
}

async fn list<R: Redrive>(
    State(lot): State<ParkingLot<R>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    for key in query.keys() {
        if !matches!(key.as_str(), "status" | "after" | "limit") {
            return Err(invalid(format!("unknown parameter {key}")));
        }
    }
    let status = query.get("status").map_or("parked", String::as_str);
    if !matches!(status, "parked" | "redriven") {
        return Err(invalid("status must be parked or redriven"));
    }
    let after = match query.get("after") {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|a| *a >= 0)
            .ok_or_else(|| invalid("after must be a cursor from a previous page"))?,
    };
    let limit = match query.get("limit") {
        None => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_PAGE).contains(l))
            .ok_or_else(|| invalid(format!("limit must be between 1 and {MAX_PAGE}")))?,
    };
    let items = lot
        .list(status, after, limit)
        .await
        .map_err(|e| database(&e))?;
    let next = (items.len() as i64 == limit)
        .then(|| items.last().map(|l| l.id.to_string()))
        .flatten();
    Ok(axum::Json(json!({ "items": items, "next": next })).into_response())
}

async fn show<R: Redrive>(
    State(lot): State<ParkingLot<R>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = letter_id(&id).ok_or_else(not_found)?;
    let letter = lot
        .get(id)
        .await
        .map_err(|e| database(&e))?
        .ok_or_else(not_found)?;
    Ok(axum::Json(letter).into_response())
}

async fn redrive_one<R: Redrive>(
    State(lot): State<ParkingLot<R>>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = letter_id(&id).ok_or_else(not_found)?;
    let letter = lot
        .get(id)
        .await
        .map_err(|e| database(&e))?
        .ok_or_else(not_found)?;
    if letter.status != "parked" {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "letter_already_redriven",
            "This letter was already re-driven",
        ));
    }
    let settled = lot.redrive(&letter).await.map_err(|e| database(&e))?;
    let letter = lot
        .get(id)
        .await
        .map_err(|e| database(&e))?
        .ok_or_else(not_found)?;
    Ok(axum::Json(json!({ "settled": settled, "letter": letter })).into_response())
}

async fn redrive_all<R: Redrive>(State(lot): State<ParkingLot<R>>) -> Result<Response, Problem> {
    let (mut redriven, mut still_parked, mut after) = (0_u64, 0_u64, 0_i64);
    loop {
        let page = lot
            .list("parked", after, MAX_PAGE)
            .await
            .map_err(|e| database(&e))?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for letter in &page {
            match lot.redrive(letter).await.map_err(|e| database(&e))? {
                Settled::Redriven => redriven += 1,
                Settled::StillTransient | Settled::Poison => still_parked += 1,
            }
        }
    }
    Ok(axum::Json(json!({ "redriven": redriven, "still_parked": still_parked })).into_response())
}
