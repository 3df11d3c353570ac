//! Typed settings of the bookkeeping service.

use std::time::Duration;

use platform_consumer::parking_lot::ParkingLotSettings;
use platform_settings::{
    AuthSettings, DaprSettings, DatabaseSettings, SecretSetting, ServerSettings, SettingsError,
    TelemetrySettings, Validate,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub database: DatabaseSettings,
    pub events: EventSettings,
    pub statements: StatementSettings,
    pub auth: AuthSettings,
    pub parking_lot: ParkingLotSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatementSettings {
    /// How often unclaimed or abandoned export jobs are queued again.
    pub sweep_interval_ms: u64,
    /// A queued job not picked up for this long is published again.
    pub requeue_after_secs: i64,
    /// A running job whose worker sent no heartbeat for this long is taken over.
    pub stale_after_secs: i64,
    pub max_attempts: i32,
    /// Exports running at once in one instance.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    pub lock_timeout_ms: u64,
    /// Most deliveries booked in one database transaction.
    pub max_batch: usize,
    /// Deadline of the routes Dapr delivers to (`/events/payments`,
    /// `/jobs/statements`), in place of `server.request_timeout_ms`: a
    /// rejected event's publish to the dead-letter topic (the sidecar's
    /// outbound budget on `pubsub`) fits, and Dapr's inbound timeout is
    /// longer (docs/adr/0026-timeout-hierarchy.md).
    pub route_timeout_ms: u64,
}

impl EventSettings {
    pub fn route_timeout(&self) -> Duration {
        Duration::from_millis(self.route_timeout_ms)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.database.validate()?;
        self.auth.validate()?;
        if self.statements.concurrency == 0 || self.statements.max_attempts < 1 {
            return Err(SettingsError::Invalid(
                "statements.concurrency and max_attempts must be >= 1".into(),
            ));
        }
        if self.events.max_batch == 0 {
            return Err(SettingsError::Invalid(
                "events.max_batch must be > 0".into(),
            ));
        }
        if self.events.lock_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "events.lock_timeout_ms must be > 0".into(),
            ));
        }
        self.parking_lot.validate()?;
        self.server
            .validate_route_deadline("events.route_timeout_ms", self.events.route_timeout_ms)
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        let mut secrets = vec![SecretSetting::new(
            "database.password",
            &self.database.password,
        )];
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
    fn production_refuses_the_development_database_password_and_takes_a_real_one() {
        let (production, mut s) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        let error = refusal(&production, &s);
        assert!(
            error.contains("database.password") && error.contains("APP__DATABASE__PASSWORD"),
            "{error}"
        );
        s.database.password = SecretString::from("db-password-from-the-store");
        platform_test_support::sidecar_tokens(&mut s.dapr);
        production.validate(&s).unwrap();
    }
}
