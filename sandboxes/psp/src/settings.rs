//! Start-up settings, read from `PSP_*` environment variables.

use std::net::IpAddr;
use std::time::Duration;

pub use sandbox_kit::settings::{FromVariables, SettingsError};
use sandbox_kit::settings::{Variables, parse};

/// Default HMAC key of the webhook signatures (a sandbox value, not a secret).
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_local_sandbox";

/// What the sandbox starts with. [`crate::Config`] values set through the
/// control API override the latency, slowness and webhook URL at run time;
/// `POST /__sandbox/reset` returns to these.
#[derive(Clone)]
pub struct Settings {
    /// `PSP_HOST`, default `127.0.0.1` (`0.0.0.0` in a container).
    pub host: IpAddr,
    /// `PSP_PORT`, default 8010; 0 picks a free port.
    pub port: u16,
    /// `PSP_WEBHOOK_URL`: where signed webhooks are POSTed (none: not sent).
    pub webhook_url: Option<String>,
    /// `PSP_WEBHOOK_SECRET`: the HMAC-SHA256 key of `Psp-Signature`.
    pub webhook_secret: String,
    /// `PSP_LATENCY_MS`: added to every `/v1` request.
    pub latency: Duration,
    /// `PSP_SLOW_MS` (default 30 000): how long the slow card and
    /// `timeout_next` hold their answer back.
    pub slow: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("webhook_url", &self.webhook_url)
            .field("webhook_secret", &"[redacted]")
            .field("latency", &self.latency)
            .field("slow", &self.slow)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8010,
            webhook_url: None,
            webhook_secret: DEFAULT_WEBHOOK_SECRET.to_owned(),
            latency: Duration::ZERO,
            slow: Duration::from_millis(30_000),
        }
    }
}

impl Settings {
    /// Settings for an in-process instance: any free port, no latency.
    pub fn ephemeral(webhook_url: Option<String>) -> Self {
        Self {
            port: 0,
            webhook_url,
            ..Self::default()
        }
    }
}

impl FromVariables for Settings {
    fn from_variables(variables: &Variables<'_>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        variables.parse_into("PSP_HOST", &mut settings.host)?;
        variables.parse_into("PSP_PORT", &mut settings.port)?;
        if let Some(v) = variables.get("PSP_WEBHOOK_URL") {
            let parsed: reqwest::Url = parse("PSP_WEBHOOK_URL", &v)?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(SettingsError::new(
                    "PSP_WEBHOOK_URL",
                    v,
                    "must be an http(s) URL",
                ));
            }
            settings.webhook_url = Some(v);
        }
        if let Some(v) = variables.get("PSP_WEBHOOK_SECRET") {
            settings.webhook_secret = v;
        }
        variables.millis_into("PSP_LATENCY_MS", &mut settings.latency)?;
        variables.millis_into("PSP_SLOW_MS", &mut settings.slow)?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = from(&[]).unwrap();
        assert_eq!(s.port, 8010);
        assert_eq!(s.webhook_secret, "whsec_local_sandbox");
        assert_eq!(s.slow, Duration::from_secs(30));
        assert_eq!(s.latency, Duration::ZERO);
        assert!(s.webhook_url.is_none());
    }

    #[test]
    fn variables_override_defaults() {
        let s = from(&[
            ("PSP_PORT", "0"),
            ("PSP_WEBHOOK_URL", "http://127.0.0.1:8002/v1/webhooks/psp"),
            ("PSP_WEBHOOK_SECRET", "k"),
            ("PSP_LATENCY_MS", "5"),
            ("PSP_SLOW_MS", "100"),
        ])
        .unwrap();
        assert_eq!(s.port, 0);
        assert_eq!(
            s.webhook_url.as_deref(),
            Some("http://127.0.0.1:8002/v1/webhooks/psp")
        );
        assert_eq!(s.webhook_secret, "k");
        assert_eq!(s.latency, Duration::from_millis(5));
        assert_eq!(s.slow, Duration::from_millis(100));
    }

    #[test]
    fn unusable_values_are_refused_with_their_name() {
        let err = from(&[("PSP_PORT", "eighty")]).unwrap_err();
        assert!(err.to_string().contains("PSP_PORT"));
        assert!(from(&[("PSP_WEBHOOK_URL", "ftp://x")]).is_err());
        assert!(format!("{:?}", from(&[]).unwrap()).contains("redacted"));
    }
}
