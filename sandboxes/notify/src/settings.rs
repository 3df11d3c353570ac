//! Start-up settings, read from `NOTIFY_*` environment variables.

use std::net::IpAddr;

use sandbox_kit::settings::Variables;
pub use sandbox_kit::settings::{FromVariables, SettingsError};

#[derive(Debug, Clone)]
pub struct Settings {
    /// `NOTIFY_HOST`, default `127.0.0.1` (`0.0.0.0` in a container).
    pub host: IpAddr,
    /// `NOTIFY_PORT`, default 8020; 0 picks a free port.
    pub port: u16,
    /// `NOTIFY_CALLBACK_SECRET`, default `notify_local_sandbox`: the
    /// HMAC-SHA256 key of the receipts' `Notify-Signature`.
    pub callback_secret: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8020,
            callback_secret: "notify_local_sandbox".to_owned(),
        }
    }
}

impl Settings {
    /// Settings for an in-process instance: any free loopback port.
    pub fn ephemeral() -> Self {
        Self {
            port: 0,
            ..Self::default()
        }
    }
}

impl FromVariables for Settings {
    fn from_variables(variables: &Variables<'_>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        variables.parse_into("NOTIFY_HOST", &mut settings.host)?;
        variables.parse_into("NOTIFY_PORT", &mut settings.port)?;
        if let Some(v) = variables.get("NOTIFY_CALLBACK_SECRET") {
            settings.callback_secret = v;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.port, 8020);
        assert_eq!(s.callback_secret, "notify_local_sandbox");
        let s = Settings::from_lookup(|n| (n == "NOTIFY_CALLBACK_SECRET").then(|| "k".to_owned()))
            .unwrap();
        assert_eq!(s.callback_secret, "k");
        let s = Settings::from_lookup(|n| (n == "NOTIFY_PORT").then(|| "0".to_owned())).unwrap();
        assert_eq!(s.port, 0);
        let err =
            Settings::from_lookup(|n| (n == "NOTIFY_PORT").then(|| "x".to_owned())).unwrap_err();
        assert!(err.to_string().contains("NOTIFY_PORT"));
    }
}
