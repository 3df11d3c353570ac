//! Typed settings of the bookkeeping service.

use platform_settings::{
    DaprSettings, DatabaseSettings, ServerSettings, SettingsError, Source, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub database: DatabaseSettings,
    pub events: EventSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    pub lock_timeout_ms: u64,
}

impl Settings {
    pub fn load(source: &Source) -> Result<Self, SettingsError> {
        let settings: Self = platform_settings::load(source)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.database.validate()?;
        if self.events.lock_timeout_ms == 0 {
            return Err(SettingsError::Invalid(
                "events.lock_timeout_ms must be > 0".into(),
            ));
        }
        Ok(())
    }
}
