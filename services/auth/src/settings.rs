//! Typed settings of the auth service.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use platform_settings::{
    DaprSettings, DatabaseSettings, SecretSetting, ServerSettings, SettingsError,
    TelemetrySettings, Validate,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub database: DatabaseSettings,
    pub oauth: OAuthSettings,
    pub keys: KeySettings,
    pub passwords: PasswordSettings,
}

/// Token lifetimes and the issuer identity.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    /// The issuer identifier (`iss`), also the base of every endpoint URL in
    /// the discovery document. No trailing slash.
    pub issuer: String,
    pub access_token_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Authorization codes live this long (RFC 6749 §4.1.2: at most 10 min).
    pub code_ttl_secs: u64,
    /// A rotated refresh token presented again within this many seconds is
    /// treated as a client retry, not as theft (0 disables the grace).
    pub refresh_reuse_grace_secs: u64,
    /// The secret of the `platform-admin` client, which start-up creates
    /// with it when that client does not exist yet (from a secret in
    /// production; a later change of this value changes nothing). Without
    /// it the admin API is reachable only by clients an admin has already
    /// created.
    #[serde(default)]
    pub bootstrap_admin_secret: Option<SecretString>,
}

/// Signing keys.
#[derive(Debug, Clone, Deserialize)]
pub struct KeySettings {
    /// Base64 of 32 random bytes: the AES-256-GCM key that seals private
    /// signing keys at rest. Production reads it from a secret
    /// (`APP__KEYS__ENCRYPTION_KEY`).
    pub encryption_key: SecretString,
    /// A new key is published this long before it signs, so that validators
    /// caching the JWKS see it first (should be ≥ their cache age).
    pub publish_delay_secs: u64,
    /// How often an instance reloads the key set (other instances rotate).
    pub reload_interval_secs: u64,
    /// Whether the well-known development key of `base.toml` is acceptable:
    /// true only for local environments (`production.toml` sets false).
    #[serde(default)]
    pub allow_development_key: bool,
}

/// The key in `config/base.toml`, public by being in the repository.
const DEVELOPMENT_KEY: &str = "bG9jYWwtZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ=";

/// Password hashing and login throttling.
#[derive(Debug, Clone, Deserialize)]
pub struct PasswordSettings {
    /// Hashes computed at once; argon2 at OWASP parameters takes ~19 MiB and
    /// tens of milliseconds each, so this bounds both memory and the CPU that
    /// logins can take from token traffic. Unset: every core but one, at
    /// least one ([`Self::concurrent_hashes`]).
    #[serde(default)]
    pub max_concurrent_hashes: Option<usize>,
    /// How long a login or registration waits for a hashing slot before it
    /// is refused as busy (503, `Retry-After`) without counting as an
    /// attempt.
    pub hash_queue_wait_ms: u64,
    /// Failed logins before the account is locked.
    pub max_failed_attempts: i32,
    pub lockout_secs: u64,
    pub min_length: usize,
}

impl PasswordSettings {
    /// `max_concurrent_hashes`, or every core but one (at least one).
    pub fn concurrent_hashes(&self) -> usize {
        self.max_concurrent_hashes.unwrap_or_else(|| {
            crate::passwords::default_concurrent_hashes(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            )
        })
    }

    pub fn hash_queue_wait(&self) -> Duration {
        Duration::from_millis(self.hash_queue_wait_ms)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.database.validate()?;
        self.oauth.validate()?;
        self.keys.encryption_key_bytes()?;
        if !self.keys.allow_development_key
            && self.keys.encryption_key.expose_secret() == DEVELOPMENT_KEY
        {
            return Err(invalid(
                "keys.encryption_key is the public development key; set APP__KEYS__ENCRYPTION_KEY from a secret",
            ));
        }
        if self.passwords.max_concurrent_hashes == Some(0)
            || self.passwords.max_failed_attempts <= 0
        {
            return Err(invalid(
                "passwords.max_concurrent_hashes and max_failed_attempts must be > 0",
            ));
        }
        if self.passwords.hash_queue_wait_ms > 60_000 {
            return Err(invalid("passwords.hash_queue_wait_ms must be <= 60000"));
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        let mut secrets = vec![
            SecretSetting::new("database.password", &self.database.password),
            SecretSetting::new("keys.encryption_key", &self.keys.encryption_key),
            SecretSetting::optional(
                "oauth.bootstrap_admin_secret",
                self.oauth.bootstrap_admin_secret.as_ref(),
            ),
        ];
        secrets.extend(self.dapr.secrets());
        secrets
    }
}

impl OAuthSettings {
    fn validate(&self) -> Result<(), SettingsError> {
        let url = url::Url::parse(&self.issuer)
            .map_err(|e| invalid(&format!("oauth.issuer is not a URL: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() || self.issuer.ends_with('/') {
            return Err(invalid(
                "oauth.issuer must have no query, fragment or trailing slash",
            ));
        }
        if self.access_token_ttl_secs == 0
            || self.id_token_ttl_secs == 0
            || self.refresh_token_ttl_secs == 0
            || self.code_ttl_secs == 0
            || self.code_ttl_secs > 600
        {
            return Err(invalid(
                "oauth token lifetimes must be > 0 and code_ttl_secs <= 600",
            ));
        }
        if self.refresh_reuse_grace_secs > 60 {
            return Err(invalid("oauth.refresh_reuse_grace_secs must be <= 60"));
        }
        Ok(())
    }

    /// The longest lifetime of a JWT we sign: a retired key must stay
    /// published at least this long.
    pub fn max_jwt_lifetime(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_secs.max(self.id_token_ttl_secs))
    }
}

impl KeySettings {
    pub fn encryption_key_bytes(&self) -> Result<[u8; 32], SettingsError> {
        let bytes = STANDARD
            .decode(self.encryption_key.expose_secret().trim())
            .map_err(|_| invalid("keys.encryption_key is not base64"))?;
        bytes
            .try_into()
            .map_err(|_| invalid("keys.encryption_key must be 32 bytes"))
    }
}

fn invalid(message: &str) -> SettingsError {
    SettingsError::Invalid(message.to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use platform_settings::Source;

    use super::*;

    fn local() -> Settings {
        let source = Source {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            environment: "local".into(),
        };
        source.load::<Settings>().unwrap()
    }

    #[test]
    fn the_local_settings_load_and_the_key_never_prints() {
        let settings = local();
        assert_eq!(settings.keys.encryption_key_bytes().unwrap().len(), 32);
        let printed = format!("{settings:?}");
        assert!(!printed.contains(settings.keys.encryption_key.expose_secret()));
    }

    #[test]
    fn hashing_uses_every_core_but_one_unless_configured() {
        let mut s = local();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(s.passwords.max_concurrent_hashes, None);
        assert_eq!(s.passwords.concurrent_hashes(), (cores - 1).max(1));
        s.passwords.max_concurrent_hashes = Some(3);
        assert_eq!(s.passwords.concurrent_hashes(), 3);
        s.passwords.max_concurrent_hashes = Some(0);
        assert!(s.validate().is_err());
    }

    #[test]
    fn bad_issuers_and_keys_are_refused() {
        let mut s = local();
        s.oauth.issuer = "http://auth.example/".into();
        assert!(s.validate().is_err());
        s.oauth.issuer = "not a url".into();
        assert!(s.validate().is_err());
        let mut s = local();
        s.keys.encryption_key = SecretString::from("c2hvcnQ=");
        assert!(s.validate().is_err());
    }
}

#[cfg(test)]
mod development_key_tests {
    use std::path::Path;

    use platform_settings::Source;

    use super::Settings;

    #[test]
    fn production_refuses_the_public_development_key_and_local_accepts_it() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let production = Source {
            config_dir: dir.clone(),
            environment: "production".into(),
        }
        .load::<Settings>();
        let error = production
            .expect_err("production must refuse the development key")
            .to_string();
        assert!(error.contains("development key"), "{error}");
        assert!(
            Source {
                config_dir: dir,
                environment: "local".into()
            }
            .load::<Settings>()
            .is_ok()
        );
    }
}

#[cfg(test)]
mod development_secret_tests {
    use platform_settings::Source;
    use platform_test_support::{production_settings, refusal};
    use secrecy::SecretString;

    use super::Settings;

    fn production() -> (Source, Settings) {
        production_settings(env!("CARGO_MANIFEST_DIR"))
    }

    fn with_real_secrets(mut s: Settings) -> Settings {
        s.database.password = SecretString::from("db-password-from-the-store");
        s.keys.encryption_key = SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        s.oauth.bootstrap_admin_secret = Some(SecretString::from("admin-secret-from-the-store"));
        s
    }

    #[test]
    fn production_refuses_each_development_secret_by_name() {
        let (production, defaults) = production();
        type Revert = fn(&mut Settings, &Settings);
        let cases: [(&str, &str, Revert); 3] = [
            ("database.password", "APP__DATABASE__PASSWORD", |s, d| {
                s.database.password = d.database.password.clone();
            }),
            (
                "keys.encryption_key",
                "APP__KEYS__ENCRYPTION_KEY",
                |s, d| {
                    s.keys.encryption_key = d.keys.encryption_key.clone();
                },
            ),
            // dapr.yaml's and docker-compose.yml's default.
            (
                "oauth.bootstrap_admin_secret",
                "APP__OAUTH__BOOTSTRAP_ADMIN_SECRET",
                |s, _| {
                    s.oauth.bootstrap_admin_secret =
                        Some(SecretString::from("local-only-admin-secret"));
                },
            ),
        ];
        for (key, variable, revert) in cases {
            let mut s = with_real_secrets(defaults.clone());
            revert(&mut s, &defaults);
            let error = refusal(&production, &s);
            assert!(error.contains(key) && error.contains(variable), "{error}");
        }
    }

    #[test]
    fn production_with_real_secrets_passes_and_without_a_bootstrap_admin_too() {
        let (production, defaults) = production();
        let mut s = with_real_secrets(defaults);
        platform_test_support::sidecar_tokens(&mut s.dapr);
        production.validate(&s).unwrap();
        s.oauth.bootstrap_admin_secret = None;
        production.validate(&s).unwrap();
    }
}
