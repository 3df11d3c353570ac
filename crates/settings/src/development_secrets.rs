//! Production refuses the secrets that development uses.
//!
//! The values below are public: they are committed in the services'
//! `config/base.toml`, `dapr.yaml` and `docker-compose.yml` so that the
//! platform starts on a laptop without a secret store. Anyone who read the
//! repository could use them, so with `APP_ENVIRONMENT=production`
//! [`crate::Source::load`] refuses every secret setting that a service lists
//! in [`crate::Validate::secrets`] while it holds one of them (or nothing).

use secrecy::{ExposeSecret, SecretString};

use crate::SettingsError;

/// The environment in which development secrets are refused.
pub const PRODUCTION: &str = "production";

/// Every secret value committed for local development. A new development
/// default belongs here too: each service's settings tests load its
/// `base.toml` and check that production refuses every secret in it.
pub const DEVELOPMENT_SECRETS: &[&str] = &[
    // auth: the bootstrap admin's secret (dapr.yaml, docker-compose.yml).
    "local-only-admin-secret",
    // auth: the key-encryption key (services/auth/config/base.toml).
    "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ=",
    // payments: the PSP sandbox's webhook secret.
    "whsec_local_sandbox",
    // communication: the notify sandbox's receipt secret.
    "notify_local_sandbox",
    // bookings: its client secret at auth (auth's bookings-client migration).
    "local-only-bookings-secret",
    // Database passwords: each service's role is named and keyed like its
    // database (scripts/sql/service-databases.sql); `postgres` is the
    // superuser's in docker-compose.yml.
    "auth",
    "payments",
    "bookkeeping",
    "communication",
    "bookings",
    "postgres",
];

/// A secret setting, named by its key (`provider.webhook_secret`).
#[derive(Debug, Clone, Copy)]
pub struct SecretSetting<'a> {
    key: &'static str,
    value: Option<&'a SecretString>,
    /// Unset is refused too (in production).
    required: bool,
    /// The variable that sets it, when not `APP__SECTION__KEY`.
    variable: Option<&'static str>,
}

impl<'a> SecretSetting<'a> {
    pub fn new(key: &'static str, value: &'a SecretString) -> Self {
        Self {
            key,
            value: Some(value),
            required: true,
            variable: None,
        }
    }

    /// A secret whose type allows it to be unset (outside production), but
    /// that production requires, e.g. the sidecar tokens.
    pub fn required(key: &'static str, value: Option<&'a SecretString>) -> Self {
        Self {
            key,
            value,
            required: true,
            variable: None,
        }
    }

    /// A secret that may be left unset (the feature it enables is then off);
    /// when set, it must not be a development value either.
    pub fn optional(key: &'static str, value: Option<&'a SecretString>) -> Self {
        Self {
            key,
            value,
            required: false,
            variable: None,
        }
    }

    /// Set by `variable` rather than `APP__SECTION__KEY` (e.g. Dapr's own
    /// `DAPR_API_TOKEN`).
    #[must_use]
    pub fn set_by(mut self, variable: &'static str) -> Self {
        self.variable = Some(variable);
        self
    }

    /// The variable that sets it: `APP__PROVIDER__WEBHOOK_SECRET`.
    pub fn variable(&self) -> String {
        self.variable.map_or_else(
            || format!("APP__{}", self.key.to_ascii_uppercase().replace('.', "__")),
            ToOwned::to_owned,
        )
    }

    fn is_development(&self) -> bool {
        match self.value {
            None => self.required,
            Some(value) => {
                let value = value.expose_secret().trim();
                value.is_empty() || DEVELOPMENT_SECRETS.contains(&value)
            }
        }
    }
}

/// Refuses `secrets` that hold a development value (or an empty one), naming
/// each setting and the variable to set it with; the values are never
/// printed.
pub fn refuse_development_secrets(secrets: &[SecretSetting<'_>]) -> Result<(), SettingsError> {
    let refused: Vec<String> = secrets
        .iter()
        .filter(|secret| secret.is_development())
        .map(|secret| format!("{} (set {})", secret.key, secret.variable()))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(SettingsError::Invalid(format!(
        "APP_ENVIRONMENT={PRODUCTION} refuses the public development value, an empty or a missing value of {}; \
         set each from a secret",
        refused.join(", ")
    )))
}
