//! Access-token checks for a service's API (tokens issued by `auth`).

use std::sync::Arc;

use platform_auth_token::{JwksCache, JwksCacheOptions, Validator, ValidatorConfig};
use platform_settings::{AuthSettings, DaprSettings};

use crate::StartupError;

/// A validator that checks tokens locally against auth's JWKS, fetched (and
/// refetched on an unknown key) from `auth.jwks_url` or through the sidecar.
pub fn token_validator(
    auth: &AuthSettings,
    dapr: &DaprSettings,
) -> Result<Validator, StartupError> {
    let mut options = JwksCacheOptions::default();
    if auth.jwks_url.is_none() {
        // Through the sidecar, which may require its API token; never sent
        // to an explicitly configured URL.
        options.headers = platform_dapr::sidecar_http_headers(dapr)?;
    }
    let keys = JwksCache::new(auth.jwks_url_via(dapr), options)
        .map_err(|e| StartupError::Config(format!("auth.jwks_url: {e}")))?;
    Ok(Validator::new(
        ValidatorConfig::new(&auth.issuer, &auth.audience),
        Arc::new(keys),
    ))
}
