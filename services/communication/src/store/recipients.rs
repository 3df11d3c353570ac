//! The recipient directory (contacts, locale) and preferences (opt-outs per
//! category and channel).

use serde::Serialize;
use sqlx::{PgConnection, PgPool, Row};

use super::notifications::Draft;
use crate::domain::{Channel, Contacts, RecipientId};

pub async fn recipient(pool: &PgPool, id: &RecipientId) -> Result<Option<Contacts>, sqlx::Error> {
    let row = sqlx::query("SELECT email, phone, push_token, locale FROM recipients WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    Ok(Some(Contacts {
        email: r.try_get("email")?,
        phone: r.get("phone"),
        push_token: r.get("push_token"),
        locale: r.get("locale"),
    }))
}

pub async fn put_recipient(
    pool: &PgPool,
    id: &RecipientId,
    contacts: &Contacts,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipients (id, email, phone, push_token, locale)
         VALUES ($1, $2, $3, $4, coalesce($5, 'en'))
         ON CONFLICT (id) DO UPDATE
            SET email = $2, phone = $3, push_token = $4, locale = coalesce($5, 'en'), updated_at = now()",
    )
    .bind(id)
    .bind(&contacts.email)
    .bind(&contacts.phone)
    .bind(&contacts.push_token)
    .bind(&contacts.locale)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preference {
    pub category: String,
    pub channel: Channel,
    pub opted_out: bool,
}

pub async fn preferences(
    pool: &PgPool,
    recipient_id: &RecipientId,
) -> Result<Vec<Preference>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT category, channel, opted_out FROM preferences
          WHERE recipient_id = $1 ORDER BY category, channel",
    )
    .bind(recipient_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Preference {
            category: r.get("category"),
            channel: Channel::parse(r.get::<&str, _>("channel")).unwrap_or(Channel::Email),
            opted_out: r.get("opted_out"),
        })
        .collect())
}

/// Replaces the recipient's preferences with `preferences`.
pub async fn put_preferences(
    pool: &PgPool,
    recipient_id: &RecipientId,
    preferences: &[Preference],
) -> Result<(), sqlx::Error> {
    let mut tx = platform_db::begin(pool).await?;
    sqlx::query("DELETE FROM preferences WHERE recipient_id = $1")
        .bind(recipient_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO preferences (recipient_id, category, channel, opted_out)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::bool[])",
    )
    .bind(recipient_id)
    .bind(
        preferences
            .iter()
            .map(|p| p.category.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        preferences
            .iter()
            .map(|p| p.channel.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(preferences.iter().map(|p| p.opted_out).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Whether the recipient opted out of `draft`'s category on its channel.
pub(super) async fn opted_out(conn: &mut PgConnection, draft: &Draft) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query_scalar::<_, bool>(
        "SELECT opted_out FROM preferences WHERE recipient_id = $1 AND category = $2 AND channel = $3",
    )
    .bind(&draft.recipient_id)
    .bind(&draft.category)
    .bind(draft.channel.as_str())
    .fetch_optional(conn)
    .await?
    .unwrap_or(false))
}
