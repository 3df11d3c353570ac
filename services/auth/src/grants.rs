//! The grants store: a user's consent to a client (`grants`) and the
//! credentials that carry it — single-use authorization codes and rotating
//! refresh tokens. Every statement on these three tables is here; what a
//! grant type checks around them is in [`crate::tokens`].
//!
//! Codes and refresh tokens are stored as SHA-256 digests
//! ([`crate::crypto::digest_secret`]); callers pass digests in.

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A grant about to be created with its first authorization code.
#[derive(Debug)]
pub struct NewGrant<'a> {
    pub client_id: &'a str,
    pub user_id: Uuid,
    /// Space-separated, as granted.
    pub scope: &'a str,
    pub audience: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub nonce: Option<&'a str>,
}

/// Creates the grant and its code (stored as `code_digest`, valid for
/// `code_ttl_secs`) in one transaction; returns the grant's id.
pub async fn create_with_code(
    pool: &PgPool,
    grant: &NewGrant<'_>,
    code_digest: &[u8],
    code_ttl_secs: u64,
) -> Result<Uuid, sqlx::Error> {
    let grant_id = Uuid::now_v7();
    let mut tx = platform_db::begin(pool).await?;
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, scope, audience) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(grant_id)
    .bind(grant.client_id)
    .bind(grant.user_id)
    .bind(grant.scope)
    .bind(grant.audience)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO authorization_codes
             (code_digest, grant_id, client_id, redirect_uri, code_challenge, nonce, auth_time, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, now(), now() + make_interval(secs => $7))",
    )
    .bind(code_digest)
    .bind(grant_id)
    .bind(grant.client_id)
    .bind(grant.redirect_uri)
    .bind(grant.code_challenge)
    .bind(grant.nonce)
    .bind(code_ttl_secs as f64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(grant_id)
}

/// An authorization code as it was issued.
#[derive(Debug, sqlx::FromRow)]
pub struct IssuedCode {
    pub grant_id: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub auth_time: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What presenting a code did.
#[derive(Debug)]
pub enum Redemption {
    /// This call spent the code (whatever its other checks will say).
    Spent(IssuedCode),
    /// The code was spent before: it leaked. When `client_id` presented it
    /// again, the grant is revoked.
    SpentBefore {
        grant_id: Uuid,
        client_id: String,
    },
    Unknown,
}

/// Spends the code (single use: whoever flips `redeemed_at` first gets it).
/// Runs in `conn`'s transaction, so that a revocation on reuse commits with
/// it.
pub async fn redeem_code(
    conn: &mut PgConnection,
    code_digest: &[u8],
) -> Result<Redemption, sqlx::Error> {
    let spent: Option<IssuedCode> = sqlx::query_as(
        "UPDATE authorization_codes SET redeemed_at = now()
         WHERE code_digest = $1 AND redeemed_at IS NULL
         RETURNING grant_id, client_id, redirect_uri, code_challenge, nonce, auth_time, expires_at",
    )
    .bind(code_digest)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(code) = spent {
        return Ok(Redemption::Spent(code));
    }
    let before: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT grant_id, client_id FROM authorization_codes WHERE code_digest = $1",
    )
    .bind(code_digest)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match before {
        Some((grant_id, client_id)) => Redemption::SpentBefore {
            grant_id,
            client_id,
        },
        None => Redemption::Unknown,
    })
}

/// A grant that is not revoked, with its user's name.
#[derive(Debug, sqlx::FromRow)]
pub struct ActiveGrant {
    pub user_id: Uuid,
    pub scope: String,
    pub audience: String,
    pub username: Option<String>,
}

pub async fn find_active(
    pool: &PgPool,
    grant_id: Uuid,
) -> Result<Option<ActiveGrant>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.user_id, g.scope, g.audience, u.username
         FROM grants g JOIN users u ON u.id = g.user_id
         WHERE g.id = $1 AND g.revoked_at IS NULL",
    )
    .bind(grant_id)
    .fetch_optional(pool)
    .await
}

/// A presented refresh token and its grant.
#[derive(Debug, sqlx::FromRow)]
pub struct PresentedRefreshToken {
    pub grant_id: Uuid,
    pub rotated_at: Option<OffsetDateTime>,
    pub expires_at: OffsetDateTime,
    pub client_id: String,
    pub user_id: Uuid,
    pub scope: String,
    pub audience: String,
    pub revoked_at: Option<OffsetDateTime>,
}

/// The refresh token with `token_digest`, its grant locked for the rest of
/// `conn`'s transaction (two rotations of one family run one after the
/// other).
pub async fn lock_by_refresh_token(
    conn: &mut PgConnection,
    token_digest: &[u8],
) -> Result<Option<PresentedRefreshToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT rt.grant_id, rt.rotated_at, rt.expires_at, g.client_id, g.user_id, g.scope,
                g.audience, g.revoked_at
         FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
         WHERE rt.token_digest = $1
         FOR UPDATE OF g",
    )
    .bind(token_digest)
    .fetch_optional(conn)
    .await
}

/// Whether a token retired at `rotated_at` is the grant's most recently
/// retired one and was retired at most `grace_secs` ago — measured on the
/// database's clock, the one that set `rotated_at`, so that an application
/// clock behind it cannot widen the grace.
pub async fn is_latest_rotation_within(
    conn: &mut PgConnection,
    grant_id: Uuid,
    rotated_at: OffsetDateTime,
    grace_secs: f64,
) -> Result<bool, sqlx::Error> {
    let (latest_rotation, within_grace): (Option<OffsetDateTime>, bool) = sqlx::query_as(
        "SELECT max(rotated_at), coalesce(now() - $2::timestamptz <= make_interval(secs => $3), false)
           FROM refresh_tokens WHERE grant_id = $1",
    )
    .bind(grant_id)
    .bind(rotated_at)
    .bind(grace_secs)
    .fetch_one(conn)
    .await?;
    Ok(within_grace && latest_rotation == Some(rotated_at))
}

/// Retires the refresh token with `token_digest`.
pub async fn retire_refresh_token(
    conn: &mut PgConnection,
    token_digest: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE token_digest = $1")
        .bind(token_digest)
        .execute(conn)
        .await?;
    Ok(())
}

/// Retires the grant's current refresh token (the one issued by the use
/// that a retry within the grace supersedes).
pub async fn retire_current_refresh_token(
    conn: &mut PgConnection,
    grant_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE grant_id = $1 AND rotated_at IS NULL",
    )
    .bind(grant_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new refresh token of `grant_id`, valid for `ttl_secs`.
pub async fn add_refresh_token(
    conn: &mut PgConnection,
    grant_id: Uuid,
    token_digest: &[u8],
    ttl_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_digest, grant_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(token_digest)
    .bind(grant_id)
    .bind(ttl_secs as f64)
    .execute(conn)
    .await?;
    Ok(())
}

/// An unretired, unexpired refresh token of a grant that is not revoked.
#[derive(Debug, sqlx::FromRow)]
pub struct ActiveRefreshToken {
    pub client_id: String,
    pub user_id: Uuid,
    pub scope: String,
    pub audience: String,
    pub expires_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
}

pub async fn find_active_refresh_token(
    pool: &PgPool,
    token_digest: &[u8],
) -> Result<Option<ActiveRefreshToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.client_id, g.user_id, g.scope, g.audience, rt.expires_at, rt.issued_at
         FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
         WHERE rt.token_digest = $1 AND rt.rotated_at IS NULL
           AND rt.expires_at > now() AND g.revoked_at IS NULL",
    )
    .bind(token_digest)
    .fetch_optional(pool)
    .await
}

/// Revokes a whole grant: its refresh tokens and the access tokens issued
/// from it stop being active.
pub async fn revoke(
    conn: &mut PgConnection,
    grant_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE grants SET revoked_at = now(), revoke_reason = $2
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(grant_id)
    .bind(reason)
    .execute(conn)
    .await?;
    tracing::warn!(grant.id = %grant_id, grant.revoke_reason = reason, "grant revoked");
    Ok(())
}

/// Revokes the grant of the refresh token with `token_digest` if it was
/// issued to `client_id`; whether a grant was revoked.
pub async fn revoke_by_refresh_token(
    pool: &PgPool,
    token_digest: &[u8],
    client_id: &str,
) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query(
        "UPDATE grants g SET revoked_at = now(), revoke_reason = 'refresh token revoked'
         FROM refresh_tokens rt
         WHERE rt.token_digest = $1 AND rt.grant_id = g.id AND g.client_id = $2
           AND g.revoked_at IS NULL",
    )
    .bind(token_digest)
    .bind(client_id)
    .execute(pool)
    .await?;
    Ok(revoked.rows_affected() > 0)
}
