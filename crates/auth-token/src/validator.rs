//! [`Validator`]: every check an access token must pass, in an order where
//! cheap, attacker-controlled checks come before the signature.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    ACCESS_TOKEN_TYPE, AccessClaims, Algorithm, Jws, KeyError, ValidationError, VerifyingKey,
};

pub type KeysFuture<'a> = Pin<Box<dyn Future<Output = Result<(), KeyError>> + Send + 'a>>;

/// Where verification keys come from: `auth`'s JWKS over HTTP
/// ([`crate::JwksCache`]), a fixed set ([`StaticKeys`]), or `auth`'s own key
/// ring in-process.
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The key named `kid`, if known now.
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>>;
    /// Called when a token names an unknown key (and when [`Self::is_stale`]).
    /// Implementations must be cheap to call often: single-flight and
    /// rate-limited.
    fn refresh(&self) -> KeysFuture<'_>;
    /// True when the keys should be refetched before use.
    fn is_stale(&self) -> bool {
        false
    }
}

/// A fixed set of keys (tests, benchmarks, or a service pinned to keys).
#[derive(Debug, Default)]
pub struct StaticKeys {
    keys: HashMap<String, Arc<VerifyingKey>>,
}

impl StaticKeys {
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|k| (k.kid().to_owned(), Arc::new(k)))
                .collect(),
        }
    }
}

impl KeySource for StaticKeys {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.get(kid).cloned()
    }

    fn refresh(&self) -> KeysFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// What a service accepts.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// `auth`'s issuer identifier, exactly as in its discovery document.
    pub issuer: String,
    /// This service's audience (its name, e.g. `payments`).
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    pub allowed_algorithms: Vec<Algorithm>,
    /// How many verified tokens to remember (0 disables the cache). A
    /// service client reuses its token until it expires, so most requests
    /// present a token already verified; the cache skips the signature check
    /// for the identical string and still checks the time claims.
    pub verified_cache_entries: usize,
}

impl ValidatorConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(5),
            allowed_algorithms: vec![Algorithm::Es256],
            verified_cache_entries: 10_000,
        }
    }
}

/// Validates access tokens. Cheap to clone; share one per service.
#[derive(Debug, Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ValidatorConfig,
    keys: Arc<dyn KeySource>,
    verified: RwLock<HashMap<Box<str>, Arc<AccessClaims>>>,
}

impl Validator {
    pub fn new(config: ValidatorConfig, keys: Arc<dyn KeySource>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                keys,
                verified: RwLock::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ValidatorConfig {
        &self.inner.config
    }

    /// Validates `token` now.
    pub async fn validate(&self, token: &str) -> Result<Arc<AccessClaims>, ValidationError> {
        let now = unix_now();
        if let Some(claims) = self.cached(token) {
            self.check_time(&claims, now)?;
            return Ok(claims);
        }
        let jws = Jws::parse(token)?;
        let alg = self.check_header(&jws)?;
        let kid = jws
            .header
            .kid
            .as_deref()
            .ok_or(ValidationError::MissingKeyId)?;
        let keys = &self.inner.keys;
        if keys.is_stale()
            && let Err(error) = keys.refresh().await
        {
            tracing::warn!(%error, "stale keys could not be refreshed; using them");
        }
        let key = match keys.key(kid) {
            Some(key) => key,
            None => {
                if let Err(error) = keys.refresh().await {
                    tracing::warn!(%error, "keys could not be refreshed");
                }
                keys.key(kid).ok_or(ValidationError::UnknownKey)?
            }
        };
        if key.algorithm() != alg {
            return Err(ValidationError::AlgorithmNotAllowed(jws.header.alg.clone()));
        }
        jws.verify(&key)?;
        let claims: AccessClaims = jws.claims()?;
        self.check_claims(&claims, now)?;
        let claims = Arc::new(claims);
        self.remember(token, &claims);
        Ok(claims)
    }

    /// Signature-independent header checks: `alg` on the allow-list, `typ`.
    fn check_header(&self, jws: &Jws<'_>) -> Result<Algorithm, ValidationError> {
        let alg = Algorithm::parse(&jws.header.alg)
            .filter(|a| self.inner.config.allowed_algorithms.contains(a))
            .ok_or_else(|| ValidationError::AlgorithmNotAllowed(jws.header.alg.clone()))?;
        let typ = jws.header.typ.as_deref().unwrap_or("");
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) {
            return Err(ValidationError::WrongType);
        }
        Ok(alg)
    }

    fn check_claims(&self, claims: &AccessClaims, now: i64) -> Result<(), ValidationError> {
        let config = &self.inner.config;
        if claims.iss != config.issuer {
            return Err(ValidationError::WrongIssuer);
        }
        if !claims.aud.contains(&config.audience) {
            return Err(ValidationError::WrongAudience);
        }
        if claims.jti.is_empty() || claims.sub.is_empty() || claims.client_id.is_empty() {
            return Err(ValidationError::MalformedClaims);
        }
        self.check_time(claims, now)
    }

    fn check_time(&self, claims: &AccessClaims, now: i64) -> Result<(), ValidationError> {
        let leeway = i64::try_from(self.inner.config.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.exp.saturating_add(leeway) <= now {
            return Err(ValidationError::Expired);
        }
        let not_before = claims.nbf.unwrap_or(claims.iat);
        if not_before.saturating_sub(leeway) > now {
            return Err(ValidationError::NotYetValid);
        }
        Ok(())
    }

    fn cached(&self, token: &str) -> Option<Arc<AccessClaims>> {
        if self.inner.config.verified_cache_entries == 0 {
            return None;
        }
        let verified = self.inner.verified.read().ok()?;
        let claims = verified.get(token)?.clone();
        drop(verified);
        // A key withdrawn from the JWKS withdraws the tokens it signed.
        let kid = Jws::parse(token).ok()?.header.kid?;
        self.inner.keys.key(&kid)?;
        Some(claims)
    }

    fn remember(&self, token: &str, claims: &Arc<AccessClaims>) {
        let capacity = self.inner.config.verified_cache_entries;
        if capacity == 0 {
            return;
        }
        if let Ok(mut verified) = self.inner.verified.write() {
            if verified.len() >= capacity {
                // Expired entries first; if that is not enough, start over
                // (cheaper than LRU bookkeeping on every hit).
                let now = unix_now();
                verified.retain(|_, c| c.exp > now);
                if verified.len() >= capacity {
                    verified.clear();
                }
            }
            verified.insert(token.into(), claims.clone());
        }
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
