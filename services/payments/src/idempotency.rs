//! `Idempotency-Key` on every POST: the same key with the same request
//! replays the first response (errors included), the same key with another
//! request is 422, a request whose key is still in flight is 409. Records live
//! in the non-outbox store (`payments-idempotency`) for at least 24 h.
//!
//! Only answers that describe an outcome are kept: a 5xx (the request could
//! not be carried out, nothing changed) or a 409 from a concurrent change
//! releases the key so that the client's retry runs again.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform_auth_token::Authenticated;
use platform_problem::Problem;
use ring::digest;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::store::{KeyValue, WriteMode, Written};

const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;
const MAX_BODY: usize = 64 * 1024;
/// Replayed answers carry this header.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The request's Idempotency-Key scoped to its client (the record key),
/// for handlers whose effect must itself be keyed by it: a create derives
/// its payment id from it (ADR 0031).
#[derive(Debug, Clone)]
pub struct IdempotencyScope(pub String);

#[derive(Debug, Clone)]
pub struct Idempotency {
    pub kv: KeyValue,
    pub ttl_secs: u64,
    pub lease_secs: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    fingerprint: String,
    #[serde(flatten)]
    state: RecordState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum RecordState {
    InFlight {
        until: i64,
    },
    Done {
        status: u16,
        #[serde(default)]
        headers: Vec<(String, String)>,
        body: String,
    },
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    hex::encode(ctx.finish())
}

fn problem(status: StatusCode, code: &'static str, title: &'static str) -> Response {
    Problem::new(status, code, title).into_response()
}

/// Headers worth replaying.
const KEPT_HEADERS: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER];

fn replay(status: u16, headers: &[(String, String)], body: String) -> Response {
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body,
    )
        .into_response();
    let map: &mut HeaderMap = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            map.insert(name, value);
        }
    }
    map.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// Whether an answer is kept for replay.
fn is_outcome(status: StatusCode) -> bool {
    !(status.is_server_error() || status == StatusCode::CONFLICT)
}

/// The middleware (a `route_layer` inside the scope check, so the token's
/// subject scopes the key: two clients never share a key).
pub async fn layer(State(idem): State<Idempotency>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k.to_owned(),
        _ => {
            return Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Invalid Idempotency-Key",
            )
            .with_detail("1 to 255 visible ASCII characters")
            .into_response();
        }
    };
    // The client and the subject scope the key: two callers never share a
    // key, so none can replay another's answer (ADR 0028).
    let subject = request
        .extensions()
        .get::<Authenticated>()
        .map(|a| format!("{}\n{}", a.0.client_id, a.0.sub))
        .unwrap_or_default();
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Request body too large",
        );
    };
    let fingerprint = sha256_hex(&[
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        &bytes,
    ]);
    let record_key = format!("idem:{}", sha256_hex(&[subject.as_bytes(), key.as_bytes()]));

    match claim(&idem, &record_key, &fingerprint).await {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Answer(response)) => return response,
        Err(e) => return e.into_response(),
    }

    parts
        .extensions
        .insert(IdempotencyScope(record_key.clone()));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    finish(&idem, &record_key, fingerprint, response).await
}

enum Claim {
    Claimed,
    Answer(Response),
}

fn in_flight_problem() -> Response {
    Problem::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_flight",
        "A request with this Idempotency-Key is in progress",
    )
    .with_retry_after(1)
    .into_response()
}

fn reused_problem() -> Response {
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "Idempotency-Key already used for another request",
    )
    .into_response()
}

/// Two records per key: `<key>` is the claim (first-write, so exactly one
/// request wins it) and `<key>:done` the answer. The common path is two
/// writes: claim, answer.
fn done_key(record_key: &str) -> String {
    format!("{record_key}:done")
}

async fn claim(
    idem: &Idempotency,
    record_key: &str,
    fingerprint: &str,
) -> Result<Claim, crate::error::PaymentsError> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let in_flight = Record {
        fingerprint: fingerprint.to_owned(),
        state: RecordState::InFlight {
            until: now + idem.lease_secs,
        },
    };
    // Two rounds: a claim that vanished (released) between the failed
    // insert and the read is tried once more.
    for _ in 0..2 {
        if idem
            .kv
            .put(record_key, &in_flight, WriteMode::Insert, idem.ttl_secs)
            .await?
            == Written::Ok
        {
            return Ok(Claim::Claimed);
        }
        if let Some(done) = idem.kv.get::<Record>(&done_key(record_key)).await? {
            if done.value.fingerprint != fingerprint {
                return Ok(Claim::Answer(reused_problem()));
            }
            if let RecordState::Done {
                status,
                headers,
                body,
            } = done.value.state
            {
                return Ok(Claim::Answer(replay(status, &headers, body)));
            }
        }
        let Some(held) = idem.kv.get::<Record>(record_key).await? else {
            continue;
        };
        if held.value.fingerprint != fingerprint {
            return Ok(Claim::Answer(reused_problem()));
        }
        match (held.value.state, held.etag.as_deref()) {
            // The holder's lease ran out (it crashed): take over.
            (RecordState::InFlight { until }, Some(etag)) if until <= now => {
                if idem
                    .kv
                    .put(
                        record_key,
                        &in_flight,
                        WriteMode::IfMatch(etag),
                        idem.ttl_secs,
                    )
                    .await?
                    == Written::Ok
                {
                    return Ok(Claim::Claimed);
                }
            }
            _ => return Ok(Claim::Answer(in_flight_problem())),
        }
    }
    Ok(Claim::Answer(in_flight_problem()))
}

async fn finish(
    idem: &Idempotency,
    record_key: &str,
    fingerprint: String,
    response: Response,
) -> Response {
    let status = response.status();
    if !is_outcome(status) {
        // Release the claim so that the client's retry runs again. A key
        // written with first-write concurrency is only deleted with its ETag.
        let released = match idem.kv.get::<Record>(record_key).await {
            Ok(found) => {
                let etag = found.and_then(|v| v.etag);
                idem.kv
                    .delete(record_key, etag.as_deref())
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            tracing::warn!(error = ?e, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes: Bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not read a response body");
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
            );
        }
    };
    let headers: Vec<(String, String)> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    let record = Record {
        fingerprint,
        state: RecordState::Done {
            status: status.as_u16(),
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        },
    };
    if let Err(e) = idem
        .kv
        .put(
            &done_key(record_key),
            &record,
            WriteMode::Overwrite,
            idem.ttl_secs,
        )
        .await
    {
        // The answer is still right; a retry would run again, and the
        // provider's own idempotency key keeps that from charging twice.
        tracing::warn!(error = ?e, "could not record an idempotent answer");
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_separate_fields() {
        assert_ne!(sha256_hex(&[b"ab", b"c"]), sha256_hex(&[b"a", b"bc"]));
        assert_eq!(sha256_hex(&[b"x"]).len(), 64);
    }

    #[test]
    fn only_outcomes_are_kept() {
        assert!(is_outcome(StatusCode::CREATED));
        assert!(is_outcome(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(is_outcome(StatusCode::PAYMENT_REQUIRED));
        assert!(!is_outcome(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!is_outcome(StatusCode::CONFLICT));
    }

    #[test]
    fn records_round_trip() {
        let r = Record {
            fingerprint: "f".into(),
            state: RecordState::Done {
                status: 201,
                headers: vec![("content-type".into(), "application/json".into())],
                body: "{}".into(),
            },
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.state, RecordState::Done { status: 201, .. }));
    }
}
