//! Per-recipient throttling windows.

use sqlx::{PgConnection, Row};

use crate::domain::RecipientId;

/// Counts one notification in the recipient's current window; `Some(secs
/// until the window ends)` if that is over the cap (the count is then not
/// kept: the caller rolls back or records `not_sent`).
pub(super) async fn count_against_limit(
    conn: &mut PgConnection,
    recipient_id: &RecipientId,
    throttle: &crate::settings::ThrottleSettings,
) -> Result<Option<u64>, sqlx::Error> {
    let row = sqlx::query(
        "WITH w AS (SELECT to_timestamp(floor(extract(epoch FROM now()) / $2) * $2) AS start)
         INSERT INTO throttle_windows (recipient_id, window_start, sent)
         SELECT $1, w.start, 1 FROM w
         ON CONFLICT (recipient_id, window_start)
           DO UPDATE SET sent = throttle_windows.sent + 1
         RETURNING sent,
                   ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))::bigint AS remaining",
    )
    .bind(recipient_id)
    .bind(throttle.window_secs as f64)
    .fetch_one(&mut *conn)
    .await?;
    let sent: i32 = row.get("sent");
    if sent <= throttle.max_per_window {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE throttle_windows SET sent = sent - 1
          WHERE recipient_id = $1
            AND window_start = to_timestamp(floor(extract(epoch FROM now()) / $2) * $2)",
    )
    .bind(recipient_id)
    .bind(throttle.window_secs as f64)
    .execute(conn)
    .await?;
    let remaining: i64 = row.get("remaining");
    Ok(Some(remaining.max(1) as u64))
}
