//! A service's settings as production loads them, for tests of what
//! production refuses (`platform_settings::DEVELOPMENT_SECRETS`).

use std::path::Path;

use platform_settings::{DaprSettings, PRODUCTION, Source, Validate};
use secrecy::SecretString;
use serde::de::DeserializeOwned;

/// The production overlay of the service in `manifest_dir` (its
/// `config/`), not yet validated, and the source that validates it.
pub fn production_settings<S: DeserializeOwned>(manifest_dir: &str) -> (Source, S) {
    let source = Source {
        config_dir: Path::new(manifest_dir).join("config"),
        environment: PRODUCTION.into(),
    };
    let settings = platform_settings::load(&source)
        .unwrap_or_else(|e| panic!("the production settings do not even load: {e}"));
    (source, settings)
}

/// What production says when it refuses `settings`; fails the test when
/// production accepts them.
pub fn refusal<S: Validate>(source: &Source, settings: &S) -> String {
    match source.validate(settings) {
        Ok(()) => panic!("production accepted settings it must refuse"),
        Err(error) => error.to_string(),
    }
}

/// Gives `dapr` the sidecar tokens a production deployment sets
/// (`DAPR_API_TOKEN`, `APP_API_TOKEN`), random and not development values,
/// so that a test of another secret's refusal is not refused for them.
pub fn sidecar_tokens(dapr: &mut DaprSettings) {
    dapr.api_token = Some(SecretString::from(crate::random_token()));
    dapr.app_token = Some(SecretString::from(crate::random_token()));
}
