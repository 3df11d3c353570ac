//! Typed, layered settings shared by every service.
//!
//! Layers, later wins:
//! 1. `<config dir>/base.toml`
//! 2. `<config dir>/<APP_ENVIRONMENT>.toml` (`local` when unset)
//! 3. environment variables `APP__SECTION__KEY` (e.g. `APP__SERVER__PORT=8080`)
//! 4. Dapr's own variables: `APP_PORT`, `DAPR_HTTP_PORT`, `DAPR_GRPC_PORT`, `DAPR_API_TOKEN`,
//!    `APP_API_TOKEN`
//!    as set by the Dapr CLI or the sidecar injector, so that ports are never hard-coded.
//!
//! Each service declares its own settings struct from the sections below,
//! says what makes it valid ([`Validate`]) and loads it with
//! [`Source::load`], so that invalid settings stop the start before anything
//! binds a port. In production ([`PRODUCTION`]) `load` also refuses the
//! secrets the service lists ([`Validate::secrets`]) while they hold a public
//! development value ([`DEVELOPMENT_SECRETS`]).

mod development_secrets;
mod sections;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use development_secrets::{
    DEVELOPMENT_SECRETS, PRODUCTION, SecretSetting, refuse_development_secrets,
};
pub use sections::{
    AuthSettings, DaprSettings, DatabaseSettings, LogFormat, ServerSettings, TelemetrySettings,
};

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid settings: {0}")]
    Invalid(String),
}

/// Where the settings files are and which environment overlay to apply.
#[derive(Debug, Clone)]
pub struct Source {
    pub config_dir: PathBuf,
    pub environment: String,
}

impl Source {
    /// `APP_CONFIG_DIR` if set, otherwise `default_dir` (a service passes its
    /// crate's `config/` folder); `APP_ENVIRONMENT` if set, otherwise `local`.
    pub fn from_env(default_dir: impl AsRef<Path>) -> Self {
        let config_dir = std::env::var_os("APP_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| default_dir.as_ref().to_path_buf());
        let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".to_owned());
        Self {
            config_dir,
            environment,
        }
    }

    /// Loads settings of type `S` from the layers described in the module
    /// docs and validates them ([`Self::validate`]).
    pub fn load<S: DeserializeOwned + Validate>(&self) -> Result<S, SettingsError> {
        let settings: S = load(self)?;
        self.validate(&settings)?;
        Ok(settings)
    }

    /// What [`Self::load`] checks: [`Validate::validate`], and in
    /// production that no secret holds a development value.
    pub fn validate<S: Validate>(&self, settings: &S) -> Result<(), SettingsError> {
        settings.validate()?;
        if self.is_production() {
            refuse_development_secrets(&settings.secrets())?;
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.environment == PRODUCTION
    }
}

/// What a service's settings must satisfy beyond their types, checked by
/// [`Source::load`] before the service starts.
pub trait Validate {
    fn validate(&self) -> Result<(), SettingsError>;

    /// Every secret these settings hold, so that production can refuse
    /// development values; required so that a service says so even when it
    /// has none.
    fn secrets(&self) -> Vec<SecretSetting<'_>>;
}

/// Loads settings of type `T` from the layers described in the module docs,
/// unvalidated: for a section or a sample; a service's settings go through
/// [`Source::load`].
pub fn load<T: DeserializeOwned>(source: &Source) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from(source.config_dir.join("base.toml")))
        .add_source(
            config::File::from(
                source
                    .config_dir
                    .join(format!("{}.toml", source.environment)),
            )
            .required(false),
        )
        .add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    for (var, key) in [
        ("APP_PORT", "server.port"),
        ("DAPR_HTTP_PORT", "dapr.http_port"),
        ("DAPR_GRPC_PORT", "dapr.grpc_port"),
        ("DAPR_API_TOKEN", "dapr.api_token"),
        ("APP_API_TOKEN", "dapr.app_token"),
    ] {
        if let Ok(value) = std::env::var(var) {
            builder = builder.set_override(key, value)?;
        }
    }
    Ok(builder.build()?.try_deserialize()?)
}

#[cfg(test)]
mod tests;
