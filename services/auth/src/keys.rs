//! The signing key ring: ES256 keys (ADR 0010) kept in PostgreSQL, private
//! halves sealed with the key-encryption key, and the rotation schedule.
//!
//! Timeline of a key: published at `publish_at` (in the JWKS), signs from
//! `activate_at` (after the publish delay, so validators have seen it), stops
//! signing at `retire_at` (when its successor activates) and leaves the JWKS
//! at `retire_at + max token lifetime`, when nothing it signed can still be
//! valid. Every instance reloads the ring periodically; which key signs is
//! decided from the timestamps at signing time, so instances agree without
//! coordination.
//!
//! Times keep the database's precision (microseconds) everywhere: they are
//! made at that precision ([`now`]) and compared as timestamps, never cut to
//! whole seconds, so a key signs exactly from its `activate_at` and not up to
//! a second before it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth_token::{Jwk, JwkSet, KeyError, KeySource, KeysFuture, VerifyingKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use tracing::instrument;

use crate::crypto::{CryptoError, KeyEncryptionKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("no key may sign now")]
    NoActiveKey,
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// When keys appear and disappear.
#[derive(Debug, Clone, Copy)]
pub struct KeySchedule {
    pub publish_delay: Duration,
    pub max_token_lifetime: Duration,
}

struct LoadedKey {
    kid: String,
    jwk: Jwk,
    verifying: Arc<VerifyingKey>,
    pair: Arc<EcdsaKeyPair>,
    publish_at: OffsetDateTime,
    activate_at: OffsetDateTime,
    retire_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("activate_at", &self.activate_at)
            .field("retire_at", &self.retire_at)
            .finish_non_exhaustive()
    }
}

/// The key that signs now.
#[derive(Clone)]
pub struct Signer {
    pub kid: String,
    pair: Arc<EcdsaKeyPair>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

impl Signer {
    /// JWS compact serialization of `claims` with header `typ`.
    pub fn sign_jwt(&self, typ: &str, claims: &impl Serialize) -> Result<String, KeyRingError> {
        let header = serde_json::json!({ "alg": "ES256", "typ": typ, "kid": self.kid });
        let mut input = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| CryptoError::Key)?;
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(input)
    }
}

/// Public facts about a key, for the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    #[serde(with = "time::serde::rfc3339")]
    pub publish_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub activate_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retire_at: Option<OffsetDateTime>,
}

#[derive(Debug)]
pub struct KeyRing {
    pool: PgPool,
    kek: KeyEncryptionKey,
    schedule: KeySchedule,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
    reload: tokio::sync::Mutex<Option<std::time::Instant>>,
}

type KeyRow = (
    String,
    sqlx::types::Json<Jwk>,
    Vec<u8>,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

/// The current time at the precision PostgreSQL stores (microseconds), so
/// that a time we keep in memory or return equals the one stored.
pub fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// The key that signs at `now`: the latest activated one not retired.
fn signing_key(keys: &[LoadedKey], now: OffsetDateTime) -> Option<&LoadedKey> {
    keys.iter()
        .filter(|k| k.activate_at <= now && k.retire_at.is_none_or(|r| r > now))
        .max_by_key(|k| k.activate_at)
}

/// Whether `key` is in the JWKS at `now`: published, and not yet past
/// `retire_at + max_token_lifetime`.
fn is_published(key: &LoadedKey, now: OffsetDateTime, max_token_lifetime: Duration) -> bool {
    key.publish_at <= now && key.retire_at.is_none_or(|r| r + max_token_lifetime > now)
}

/// Serialises key creation across instances.
const KEY_LOCK: i64 = 0x6175_7468_6b65_7973; // "authkeys"

impl KeyRing {
    /// Loads the ring, creating the first key if there is none that can sign.
    pub async fn load(
        pool: PgPool,
        kek: KeyEncryptionKey,
        schedule: KeySchedule,
    ) -> Result<Arc<Self>, KeyRingError> {
        let ring = Arc::new(Self {
            pool,
            kek,
            schedule,
            keys: RwLock::new(Arc::new(Vec::new())),
            reload: tokio::sync::Mutex::new(None),
        });
        ring.ensure_signing_key().await?;
        ring.reload().await?;
        if ring.signer().is_err() {
            // Keys exist but none could be opened (e.g. the encryption key
            // was replaced): start a new key at once instead of refusing to
            // sign. Tokens of the unreadable keys stop validating.
            let mut tx = platform_db::begin(&ring.pool).await?;
            let now = now();
            let kid = ring.insert_key(&mut tx, now, now).await?;
            tx.commit().await?;
            tracing::warn!(key.kid = %kid, "no signing key could be opened; created a new one");
            ring.reload().await?;
        }
        Ok(ring)
    }

    #[instrument(skip_all)]
    async fn ensure_signing_key(&self) -> Result<(), KeyRingError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let usable: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM signing_keys WHERE retire_at IS NULL OR retire_at > now()",
        )
        .fetch_one(&mut *tx)
        .await?;
        if usable == 0 {
            let now = now();
            let kid = self.insert_key(&mut tx, now, now).await?;
            tracing::info!(key.kid = %kid, "created the first signing key");
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_key(
        &self,
        tx: &mut sqlx::PgConnection,
        publish_at: OffsetDateTime,
        activate_at: OffsetDateTime,
    ) -> Result<String, KeyRingError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| CryptoError::Key)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| CryptoError::Key)?;
        let kid = uuid::Uuid::now_v7().simple().to_string();
        let jwk = Jwk::es256(&kid, pair.public_key().as_ref()).map_err(|_| CryptoError::Key)?;
        let sealed = self.kek.seal(pkcs8.as_ref(), &kid)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_key_sealed, publish_at, activate_at)
             VALUES ($1, 'ES256', $2, $3, $4, $5)",
        )
        .bind(&kid)
        .bind(sqlx::types::Json(&jwk))
        .bind(sealed)
        .bind(publish_at)
        .bind(activate_at)
        .execute(&mut *tx)
        .await?;
        Ok(kid)
    }

    /// Publishes a new key now; it signs after the publish delay, when the
    /// current one retires. Returns the new key.
    #[instrument(skip_all)]
    pub async fn rotate(&self) -> Result<KeyInfo, KeyRingError> {
        let mut tx = platform_db::begin(&self.pool).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await?;
        let now = now();
        let activate_at = truncate_to_micros(now + self.schedule.publish_delay);
        let kid = self.insert_key(&mut tx, now, activate_at).await?;
        sqlx::query(
            "UPDATE signing_keys SET retire_at = $1
             WHERE kid <> $2 AND (retire_at IS NULL OR retire_at > $1)",
        )
        .bind(activate_at)
        .bind(&kid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(key.kid = %kid, key.activate_at = %activate_at, "signing key rotation scheduled");
        self.reload().await?;
        Ok(KeyInfo {
            kid,
            publish_at: now,
            activate_at,
            retire_at: None,
        })
    }

    /// Reads every key that is still published or pending and opens the
    /// private halves.
    #[instrument(skip_all)]
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let lifetime = i64::try_from(self.schedule.max_token_lifetime.as_secs()).unwrap_or(0);
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, public_jwk, private_key_sealed, publish_at, activate_at, retire_at
                 FROM signing_keys
                 WHERE retire_at IS NULL OR retire_at + make_interval(secs => $1) > now()
                 ORDER BY activate_at DESC",
        )
        .bind(lifetime as f64)
        .fetch_all(&self.pool)
        .await?;
        let rng = SystemRandom::new();
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, jwk, sealed, publish_at, activate_at, retire_at) in rows {
            // A key that cannot be opened (sealed under another encryption
            // key, or damaged) is left out rather than failing the whole
            // ring: the service keeps running and can rotate to a new key.
            let opened = self
                .kek
                .open(&sealed, &kid)
                .map_err(KeyRingError::from)
                .and_then(|pkcs8| {
                    let pair =
                        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
                            .map_err(|_| CryptoError::Key)?;
                    let verifying = jwk.0.verifying_key().map_err(|_| CryptoError::Key)?;
                    Ok((pair, verifying))
                });
            let (pair, verifying) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    tracing::error!(key.kid = %kid, %error, "signing key cannot be opened; left out of the key ring");
                    continue;
                }
            };
            keys.push(LoadedKey {
                kid,
                jwk: jwk.0,
                verifying: Arc::new(verifying),
                pair: Arc::new(pair),
                publish_at,
                activate_at,
                retire_at,
            });
        }
        if let Ok(mut current) = self.keys.write() {
            *current = Arc::new(keys);
        }
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The key that signs now: the latest activated one not retired.
    pub fn signer(&self) -> Result<Signer, KeyRingError> {
        signing_key(&self.snapshot(), OffsetDateTime::now_utc())
            .map(|k| Signer {
                kid: k.kid.clone(),
                pair: k.pair.clone(),
            })
            .ok_or(KeyRingError::NoActiveKey)
    }

    fn is_published(&self, key: &LoadedKey, now: OffsetDateTime) -> bool {
        is_published(key, now, self.schedule.max_token_lifetime)
    }

    /// The JWKS: every published key, including retired ones whose tokens
    /// may still be valid.
    pub fn jwks(&self) -> JwkSet {
        let now = OffsetDateTime::now_utc();
        JwkSet {
            keys: self
                .snapshot()
                .iter()
                .filter(|k| self.is_published(k, now))
                .map(|k| k.jwk.clone())
                .collect(),
        }
    }

    pub async fn list(&self) -> Result<Vec<KeyInfo>, KeyRingError> {
        let rows: Vec<(String, OffsetDateTime, OffsetDateTime, Option<OffsetDateTime>)> =
            sqlx::query_as(
                "SELECT kid, publish_at, activate_at, retire_at FROM signing_keys ORDER BY activate_at DESC",
            )
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(kid, publish_at, activate_at, retire_at)| KeyInfo {
                kid,
                publish_at,
                activate_at,
                retire_at,
            })
            .collect())
    }
}

impl KeySource for KeyRing {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        let now = OffsetDateTime::now_utc();
        self.snapshot()
            .iter()
            .find(|k| k.kid == kid && self.is_published(k, now))
            .map(|k| k.verifying.clone())
    }

    /// Rate-limited reload: an unknown kid is normally a forgery, not a key
    /// another instance just created.
    fn refresh(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            let mut last = self.reload.lock().await;
            if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
            self.reload()
                .await
                .map_err(|e| KeyError::Fetch(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10:00:00 UTC on 2026-11-26 plus `nanos`.
    fn at(seconds: i64, nanos: i128) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(1_795_687_200 + seconds) * 1_000_000_000 + nanos,
        )
        .unwrap()
    }

    fn key(kid: &str, activate_at: OffsetDateTime, retire_at: Option<OffsetDateTime>) -> LoadedKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let jwk = Jwk::es256(kid, pair.public_key().as_ref()).unwrap();
        LoadedKey {
            kid: kid.into(),
            verifying: Arc::new(jwk.verifying_key().unwrap()),
            jwk,
            pair: Arc::new(pair),
            publish_at: activate_at,
            activate_at,
            retire_at,
        }
    }

    #[test]
    fn rotation_happens_at_the_exact_instant_not_the_whole_second() {
        let handover = at(0, 700_000_000);
        let keys = vec![
            key("new", handover, None),
            key("old", at(-3600, 0), Some(handover)),
        ];
        let signer_at = |t| signing_key(&keys, t).map(|k| k.kid.as_str());
        // Within the second of the handover but before it, the old key signs.
        assert_eq!(signer_at(at(0, 200_000_000)), Some("old"));
        assert_eq!(signer_at(at(0, 699_999_000)), Some("old"));
        assert_eq!(signer_at(handover), Some("new"));
        // A key leaves the JWKS exactly a token lifetime after it retires.
        let lifetime = Duration::from_secs(300);
        let gone = at(300, 700_000_000);
        assert!(is_published(&keys[1], at(300, 200_000_000), lifetime));
        assert!(!is_published(&keys[1], gone, lifetime));
        // The new key is not in the JWKS before it is published.
        assert!(!is_published(&keys[0], at(0, 500_000_000), lifetime));
    }

    #[test]
    fn times_are_kept_at_the_stored_precision() {
        let t = at(0, 123_456_789);
        assert_eq!(truncate_to_micros(t), at(0, 123_456_000));
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
