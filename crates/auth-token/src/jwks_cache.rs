//! `auth`'s JWKS, fetched over HTTP and cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::validator::KeysFuture;
use crate::{JwkSet, KeyError, KeySource, VerifyingKey};

#[derive(Debug, Clone)]
pub struct JwksCacheOptions {
    /// Keys older than this are refetched before use (a fetch failure keeps
    /// the old keys: `auth` being down must not fail every request).
    pub max_age: Duration,
    /// At most one fetch per this interval, whatever the tokens say.
    pub min_refresh_interval: Duration,
    pub request_timeout: Duration,
    /// Sent with every fetch, e.g. the sidecar's API token when the JWKS is
    /// fetched through the sidecar (`platform_dapr::sidecar_http_headers`).
    pub headers: reqwest::header::HeaderMap,
}

impl Default for JwksCacheOptions {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
            headers: reqwest::header::HeaderMap::new(),
        }
    }
}

/// A JWKS fetched from a URL (normally `jwks_uri` of `auth`'s discovery
/// document), refetched when stale or when a token names an unknown key.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    http: reqwest::Client,
    options: JwksCacheOptions,
    keys: RwLock<Arc<HashMap<String, Arc<VerifyingKey>>>>,
    fetched_at: RwLock<Option<Instant>>,
    /// Single flight: concurrent refreshes wait for the one in progress.
    fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    pub fn new(url: impl Into<String>, options: JwksCacheOptions) -> Result<Self, KeyError> {
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .default_headers(options.headers.clone())
            .build()
            .map_err(|e| KeyError::Fetch(e.to_string()))?;
        Ok(Self {
            url: url.into(),
            http,
            options,
            keys: RwLock::new(Arc::new(HashMap::new())),
            fetched_at: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// Fetches now (at start-up, to fail early on a wrong URL).
    pub async fn fetch(&self) -> Result<usize, KeyError> {
        let set: JwkSet = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| KeyError::Fetch(e.to_string()))?
            .json()
            .await
            .map_err(|e| KeyError::Fetch(e.to_string()))?;
        let keys: HashMap<_, _> = set
            .verifying_keys()
            .into_iter()
            .map(|k| (k.kid().to_owned(), Arc::new(k)))
            .collect();
        let count = keys.len();
        if let Ok(mut current) = self.keys.write() {
            *current = Arc::new(keys);
        }
        if let Ok(mut at) = self.fetched_at.write() {
            *at = Some(Instant::now());
        }
        tracing::debug!(jwks.url = %self.url, jwks.keys = count, "JWKS fetched");
        Ok(count)
    }
}

impl KeySource for JwksCache {
    fn key(&self, kid: &str) -> Option<Arc<VerifyingKey>> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    fn refresh(&self) -> KeysFuture<'_> {
        Box::pin(async move {
            let requested = Instant::now();
            let mut last = self.fetch.lock().await;
            // Someone fetched while we waited, or fetched too recently.
            if let Some(at) = *last
                && (at >= requested || at.elapsed() < self.options.min_refresh_interval)
            {
                return Ok(());
            }
            *last = Some(Instant::now());
            self.fetch().await.map(|_| ())
        })
    }

    fn is_stale(&self) -> bool {
        self.fetched_at
            .read()
            .ok()
            .and_then(|at| *at)
            .is_none_or(|at| at.elapsed() > self.options.max_age)
    }
}
