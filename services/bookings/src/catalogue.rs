//! The catalogue: offerings written by administrators (each change
//! announced through the outbox) and read by everyone through a shared
//! cache (ADR 0038).
//!
//! The shared tier is a Dapr state store (Redis) holding each catalogue
//! page's JSON for `cache.ttl_secs`; in front of it each instance keeps the
//! pages it served for `cache.local_ttl_ms`. Keys carry a *generation*,
//! itself a key in the store: consuming one of bookings' own
//! `bookings.offering.*` events writes a new generation, so no page cached
//! before the change is read again by any replica once it has re-read the
//! generation (at most `cache.generation_refresh_ms` later). A reservation
//! does not invalidate: "places left" on a cached page is at most
//! `ttl_secs + local_ttl_ms` old, and a place is never sold from the cache
//! (the reservation is decided in the database).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_dapr::{Sidecar, WriteMode};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::domain::OfferingSpec;
use crate::error::BookingsError;
use crate::settings::CacheSettings;
use crate::store::offerings::{CatalogueQuery, Offering, Offerings};
use crate::store::outbox;

const GENERATION_KEY: &str = "catalogue-generation";

/// A catalogue page as served: its JSON body, its strong ETag, and whether
/// it came from the cache.
#[derive(Debug, Clone)]
pub struct Page {
    pub body: Vec<u8>,
    pub etag: String,
    pub from_cache: bool,
}

#[derive(Debug, Serialize)]
struct PageBody<'a> {
    items: &'a [Offering],
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// Most pages an instance keeps in memory (cleared when full).
const LOCAL_PAGES: usize = 1024;

/// The instance's own tier in front of the shared store: pages by key
/// (which carries the generation), and the generation as last read.
#[derive(Debug, Default)]
struct Local {
    generation: Option<(String, Instant)>,
    pages: HashMap<String, (Instant, Vec<u8>)>,
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    offerings: Offerings,
    sidecar: Sidecar,
    cache: Arc<CacheSettings>,
    topic: Arc<str>,
    local: Arc<Mutex<Local>>,
}

impl Catalogue {
    pub fn new(offerings: Offerings, sidecar: Sidecar, cache: CacheSettings, topic: &str) -> Self {
        Self {
            offerings,
            sidecar,
            cache: Arc::new(cache),
            topic: topic.into(),
            local: Arc::new(Mutex::new(Local::default())),
        }
    }

    pub fn max_age_secs(&self) -> u32 {
        self.cache.ttl_secs
    }

    pub async fn create(&self, spec: &OfferingSpec) -> Result<Offering, BookingsError> {
        let mut tx = platform_db::begin(self.offerings.pool()).await?;
        let offering = self.offerings.create(&mut tx, spec).await?;
        self.announce(&mut tx, &offering, "bookings.offering.created")
            .await?;
        tx.commit().await?;
        Ok(offering)
    }

    pub async fn replace(&self, id: Uuid, spec: &OfferingSpec) -> Result<Offering, BookingsError> {
        let mut tx = platform_db::begin(self.offerings.pool()).await?;
        let offering = self.offerings.replace(&mut tx, id, spec).await?;
        self.announce(&mut tx, &offering, "bookings.offering.updated")
            .await?;
        tx.commit().await?;
        Ok(offering)
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Offering>, BookingsError> {
        Ok(self.offerings.get(id).await?)
    }

    async fn announce(
        &self,
        conn: &mut sqlx::PgConnection,
        offering: &Offering,
        event_type: &str,
    ) -> Result<(), sqlx::Error> {
        let data = json!({
            "offering_id": offering.id,
            "kind": offering.kind,
            "title": offering.title,
            "starts_at": offering.starts_at.format(&Rfc3339).unwrap_or_default(),
            "price_amount": offering.price_amount,
            "currency": offering.currency,
            "capacity": offering.capacity,
            "status": offering.status,
        });
        outbox::append(
            conn,
            &self.topic,
            event_type,
            &offering.id.to_string(),
            &data,
        )
        .await
    }

    /// One page of the catalogue: from the cache unless `bypass` (the
    /// client sent `Cache-Control: no-cache`) or the cache is off or away;
    /// a miss is read from the database and cached. Two tiers: this
    /// instance's memory (`cache.local_ttl_ms`), then the shared Dapr state
    /// store (`cache.ttl_secs`). The cache never fails a read: when the
    /// store is away the database answers.
    pub async fn page(&self, query: &CatalogueQuery, bypass: bool) -> Result<Page, BookingsError> {
        let use_cache = self.cache.enabled && !bypass;
        let key = if use_cache {
            self.key(query).await
        } else {
            None
        };
        if let Some(key) = &key {
            if let Some(body) = self.local_get(key) {
                metrics::counter!("catalogue_cache_total", "result" => "hit", "tier" => "local")
                    .increment(1);
                return Ok(page(body, true));
            }
            if let Ok(Some(hit)) = self.sidecar.get_state(&self.cache.store, key).await {
                metrics::counter!("catalogue_cache_total", "result" => "hit", "tier" => "shared")
                    .increment(1);
                self.local_put(key, hit.value.clone());
                return Ok(page(hit.value, true));
            }
        }
        let items = self.offerings.list(query).await?;
        let next_cursor = (items.len() as i64 == query.limit)
            .then(|| items.last().map(|o| cursor(o.starts_at, o.id)))
            .flatten();
        let body = serde_json::to_vec(&PageBody {
            items: &items,
            next_cursor,
        })
        .unwrap_or_default();
        if let Some(key) = key {
            metrics::counter!("catalogue_cache_total", "result" => "miss").increment(1);
            let ttl = Some(Duration::from_secs(u64::from(self.cache.ttl_secs)));
            match self
                .sidecar
                .save_state(
                    &self.cache.store,
                    &key,
                    body.clone(),
                    WriteMode::Overwrite,
                    ttl,
                )
                .await
            {
                Ok(()) => self.local_put(&key, body.clone()),
                Err(error) => tracing::warn!(%error, "catalogue page not cached"),
            }
        } else {
            metrics::counter!("catalogue_cache_total", "result" => "bypass").increment(1);
        }
        Ok(page(body, false))
    }

    fn local_get(&self, key: &str) -> Option<Vec<u8>> {
        let local = self.local.lock().ok()?;
        let max_age = Duration::from_millis(self.cache.local_ttl_ms);
        local
            .pages
            .get(key)
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, body)| body.clone())
    }

    fn local_put(&self, key: &str, body: Vec<u8>) {
        if self.cache.local_ttl_ms == 0 {
            return;
        }
        if let Ok(mut local) = self.local.lock() {
            if local.pages.len() >= LOCAL_PAGES {
                local.pages.clear();
            }
            local.pages.insert(key.to_owned(), (Instant::now(), body));
        }
    }

    /// The cache key of `query` under the current generation, which this
    /// instance re-reads from the shared store at most every
    /// `cache.generation_refresh_ms` (so an invalidation reaches every
    /// replica within that time); `None` when the store cannot be read
    /// (the database answers then).
    async fn key(&self, query: &CatalogueQuery) -> Option<String> {
        let refresh = Duration::from_millis(self.cache.generation_refresh_ms);
        let known = self.local.lock().ok().and_then(|l| {
            l.generation
                .as_ref()
                .filter(|(_, at)| at.elapsed() < refresh)
                .map(|(g, _)| g.clone())
        });
        let generation = match known {
            Some(generation) => generation,
            None => {
                let generation = match self
                    .sidecar
                    .get_state(&self.cache.store, GENERATION_KEY)
                    .await
                {
                    Ok(Some(entry)) => String::from_utf8_lossy(&entry.value)
                        .trim_matches('"')
                        .to_owned(),
                    Ok(None) => "0".to_owned(),
                    Err(error) => {
                        tracing::warn!(%error, "catalogue cache unavailable; reading the database");
                        return None;
                    }
                };
                if let Ok(mut local) = self.local.lock() {
                    local.generation = Some((generation.clone(), Instant::now()));
                }
                generation
            }
        };
        let mut hash = Sha256::new();
        hash.update(format!("{query:?}").as_bytes());
        Some(format!(
            "catalogue-{generation}-{}",
            hex::encode(&hash.finalize()[..12])
        ))
    }

    /// Starts a new generation: every page cached before is no longer read.
    pub async fn invalidate(&self) -> Result<(), platform_dapr::SidecarError> {
        let generation =
            serde_json::to_vec(&Uuid::now_v7().simple().to_string()).unwrap_or_default();
        self.sidecar
            .save_state(
                &self.cache.store,
                GENERATION_KEY,
                generation,
                WriteMode::Overwrite,
                None,
            )
            .await
    }
}

fn page(body: Vec<u8>, from_cache: bool) -> Page {
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&body)[..16]));
    Page {
        body,
        etag,
        from_cache,
    }
}

/// An opaque cursor: the last offering's start and id.
pub fn cursor(starts_at: time::OffsetDateTime, id: Uuid) -> String {
    format!("{}_{}", starts_at.unix_timestamp_nanos(), id.simple())
}

/// Parses a cursor made by [`cursor`].
pub fn parse_cursor(text: &str) -> Option<(time::OffsetDateTime, Uuid)> {
    let (nanos, id) = text.split_once('_')?;
    let nanos: i128 = nanos.parse().ok()?;
    Some((
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?,
        Uuid::parse_str(id).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at = time::macros::datetime!(2027-03-01 09:00:00.123456 UTC);
        let id = Uuid::now_v7();
        assert_eq!(parse_cursor(&cursor(at, id)), Some((at, id)));
        assert_eq!(parse_cursor("nope"), None);
        assert_eq!(parse_cursor("12_notauuid"), None);
    }

    #[test]
    fn the_etag_follows_the_body() {
        assert_eq!(
            page(b"{}".to_vec(), false).etag,
            page(b"{}".to_vec(), true).etag
        );
        assert_ne!(
            page(b"{}".to_vec(), false).etag,
            page(b"[]".to_vec(), false).etag
        );
    }
}
