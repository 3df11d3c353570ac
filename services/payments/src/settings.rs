//! Typed settings of the payments service.

use platform_settings::{
    AuthSettings, DaprSettings, ServerSettings, SettingsError, Source, TelemetrySettings,
};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub payments: PaymentsSettings,
    pub auth: AuthSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsSettings {
    /// Dapr state store with the transactional outbox enabled.
    pub state_store: String,
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
        self.auth.validate()?;
        if self.payments.state_store.is_empty() {
            return Err(SettingsError::Invalid(
                "payments.state_store must be set".into(),
            ));
        }
        Ok(())
    }
}
