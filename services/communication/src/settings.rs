//! Typed settings of the communication service.

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
        self.database.validate()
    }
}
