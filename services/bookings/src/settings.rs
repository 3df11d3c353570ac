//! Typed settings of the bookings service.

use std::time::Duration;

use platform_settings::{
    AuthSettings, DaprSettings, DatabaseSettings, SecretSetting, ServerSettings, SettingsError,
    TelemetrySettings, Validate,
};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub bookings: BookingSettings,
    pub payments: PaymentsSettings,
    pub saga: SagaSettings,
    pub cache: CacheSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookingSettings {
    /// How long a reservation holds its place while the payment is open.
    pub hold_secs: i64,
    /// Pub/sub component and topic of bookings' own events.
    pub pubsub: String,
    pub topic: String,
    /// How long a booking request waits for the saga's first calls
    /// (deadline, payment) before answering without the payment; the
    /// worker makes them then.
    pub inline_calls_ms: u64,
}

/// How bookings reaches payments: service invocation of `app_id` through
/// the sidecar, with an access token obtained from auth (client
/// credentials, audience `payments`) by invoking `auth_app_id`.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsSettings {
    pub app_id: String,
    pub auth_app_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub timeout_ms: u64,
}

impl PaymentsSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SagaSettings {
    /// The saga worker runs pending commands when woken and at least this
    /// often (commands whose call failed are retried at this pace).
    pub worker_interval_ms: u64,
    /// Commands run in one round.
    pub batch: i64,
    /// Published outbox rows per round.
    pub relay_batch: i64,
}

/// The catalogue cache (ADR 0038): a Dapr state store with TTL.
#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub enabled: bool,
    pub store: String,
    /// The longest a cached catalogue page (and its "places left") can be
    /// stale; also the `Cache-Control: max-age` given to clients.
    pub ttl_secs: u32,
    /// How long an instance serves a page from its own memory (0: never).
    pub local_ttl_ms: u64,
    /// How often an instance re-reads the cache generation: the delay
    /// before an invalidation reaches every replica.
    pub generation_refresh_ms: u64,
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.database.validate()?;
        self.auth.validate()?;
        let invalid = |m: &str| Err(SettingsError::Invalid(m.into()));
        if !(60..=86_400).contains(&self.bookings.hold_secs) {
            return invalid("bookings.hold_secs must be 60..=86400");
        }
        if self.payments.timeout_ms == 0 || self.saga.worker_interval_ms == 0 {
            return invalid("payments.timeout_ms and saga.worker_interval_ms must be > 0");
        }
        if self.saga.batch < 1 || self.saga.relay_batch < 1 {
            return invalid("saga.batch and saga.relay_batch must be >= 1");
        }
        if !(1..=300).contains(&self.cache.ttl_secs) {
            return invalid("cache.ttl_secs must be 1..=300");
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        let mut secrets = vec![
            SecretSetting::new("database.password", &self.database.password),
            SecretSetting::new("payments.client_secret", &self.payments.client_secret),
        ];
        secrets.extend(self.dapr.secrets());
        secrets
    }
}

#[cfg(test)]
mod development_secret_tests {
    use platform_test_support::{production_settings, refusal};
    use secrecy::SecretString;

    use super::Settings;

    #[test]
    fn production_refuses_the_development_secrets_and_takes_real_ones() {
        let (production, mut s) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        let error = refusal(&production, &s);
        for variable in ["APP__DATABASE__PASSWORD", "APP__PAYMENTS__CLIENT_SECRET"] {
            assert!(error.contains(variable), "{error}");
        }
        s.database.password = SecretString::from("db-password-from-the-store");
        s.payments.client_secret = SecretString::from("client-secret-from-the-store");
        platform_test_support::sidecar_tokens(&mut s.dapr);
        production.validate(&s).unwrap();
    }

    #[test]
    fn the_base_settings_are_valid() {
        use platform_settings::Validate;
        let (_, s) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        s.validate().unwrap();
        let mut bad = s.clone();
        bad.bookings.hold_secs = 5;
        assert!(bad.validate().is_err());
        let mut bad = s;
        bad.cache.ttl_secs = 0;
        assert!(bad.validate().is_err());
    }
}
