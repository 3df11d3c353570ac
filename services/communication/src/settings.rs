//! Typed settings of the communication service.

use std::path::{Path, PathBuf};
use std::time::Duration;

use platform_consumer::parking_lot::ParkingLotSettings;
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
    pub templates: TemplateSettings,
    pub channels: ChannelSettings,
    pub events: EventSettings,
    pub sending: SendingSettings,
    pub relay: RelaySettings,
    pub throttle: ThrottleSettings,
    pub categories: CategorySettings,
    pub links: LinkSettings,
    pub providers: ProviderSettings,
    pub parking_lot: ParkingLotSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TemplateSettings {
    /// Folder of `<template>/<locale>/<part>` files to load instead of the
    /// templates built into the binary; relative paths are taken from the
    /// crate's folder. Unset: the built-in ones.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Used when a recipient's locale has no variant of a template.
    pub default_locale: String,
}

impl TemplateSettings {
    pub fn resolved_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| {
            if dir.is_absolute() {
                dir.clone()
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
            }
        })
    }
}

/// The Dapr output bindings each channel sends through.
#[derive(Debug, Clone, Deserialize)]
pub struct ChannelSettings {
    /// `From` of every email.
    pub email_from: String,
    /// The `bindings.smtp-mime` component (pluggable-components/smtp-mime,
    /// docs/adr/0023).
    pub email_binding: String,
    /// Every email's `Message-ID` is `<notification id@message_id_domain>`:
    /// stable across retries, so a mail sent twice after a crash carries the
    /// same id and receivers can drop the repeat.
    pub message_id_domain: String,
    pub sms_primary_binding: String,
    pub sms_secondary_binding: String,
    pub push_binding: String,
}

/// The routes Dapr delivers subscribed events to (`pubsub`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Deadline of the event routes, in place of `server.request_timeout_ms`:
    /// a rejected event's publish to the dead-letter topic (the sidecar's
    /// outbound budget on `pubsub`) fits, and Dapr's inbound timeout is
    /// longer (docs/adr/0026-timeout-hierarchy.md).
    pub route_timeout_ms: u64,
}

impl EventSettings {
    pub fn route_timeout(&self) -> Duration {
        Duration::from_millis(self.route_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SendingSettings {
    /// Attempts per notification before it is failed and dead-lettered
    /// (1 + the Resiliency policy's retries).
    pub max_attempts: i32,
    /// A claim older than this without an outcome is taken as a crashed send.
    pub stale_after_secs: i64,
    /// A queued or retrying notification without activity for this long has
    /// its send job published again.
    pub requeue_after_secs: i64,
    /// A notification whose retriable failures outlast `max_attempts` (a
    /// provider down for longer than one round of Dapr's back-off) is not
    /// failed: it waits `requeue_after_secs` and is tried again, until it is
    /// this old. Only then, or on a terminal failure, is it `failed`.
    pub give_up_after_secs: i64,
    pub sweep_interval_ms: u64,
    /// Deadline of the send worker's routes (`/jobs/send`,
    /// `/jobs/send-failed`), in place of `server.request_timeout_ms`: the
    /// slowest channel's binding calls (email, or SMS primary then
    /// secondary) fit, and Dapr's inbound timeout on `communication-queue`
    /// is longer (docs/adr/0026-timeout-hierarchy.md).
    pub route_timeout_ms: u64,
}

impl SendingSettings {
    pub fn route_timeout(&self) -> Duration {
        Duration::from_millis(self.route_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// Longest wait between two outbox scans (commits also wake the relay).
    pub interval_ms: u64,
    /// Outbox rows published per transaction.
    pub batch: i64,
    /// Publishes in flight at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ThrottleSettings {
    /// Notifications per recipient per window (critical categories exempt).
    pub max_per_window: i32,
    pub window_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CategorySettings {
    /// Categories that bypass opt-outs and throttling.
    pub critical: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LinkSettings {
    /// Public base URL that bookkeeping's statement download paths hang off.
    pub statements_base_url: String,
}

/// Delivery receipts from the SMS and push providers (docs/adr/0022).
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSettings {
    /// Base URL the providers post receipts to (`<base>/v1/providers/<provider>/receipts`,
    /// sent with every SMS and push as `status_callback`). Empty: no receipts
    /// are asked for and notifications stay `sent`.
    pub receipts_base_url: String,
    /// HMAC-SHA256 key of the receipts' `Notify-Signature`.
    pub receipt_secret: SecretString,
    /// Largest accepted distance between a receipt's signed timestamp and
    /// this service's clock, either way.
    pub receipt_tolerance_secs: i64,
}

impl ProviderSettings {
    /// The `status_callback` for `provider`; none when receipts are off.
    pub fn callback_url(&self, provider: &str) -> Option<String> {
        let base = self.receipts_base_url.trim().trim_end_matches('/');
        (!base.is_empty()).then(|| format!("{base}/v1/providers/{provider}/receipts"))
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.database.validate()?;
        self.auth.validate()?;
        self.parking_lot.validate()?;
        let invalid = |m: &str| Err(SettingsError::Invalid(m.to_owned()));
        if self.channels.email_binding.trim().is_empty() {
            return invalid("channels.email_binding must name a binding");
        }
        let domain = &self.channels.message_id_domain;
        if domain.is_empty()
            || !domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return invalid("channels.message_id_domain must be a domain name");
        }
        if self.sending.max_attempts < 1 || self.sending.stale_after_secs < 1 {
            return invalid("sending.max_attempts and stale_after_secs must be >= 1");
        }
        if self.sending.give_up_after_secs < 0 {
            return invalid("sending.give_up_after_secs must be >= 0");
        }
        self.server
            .validate_route_deadline("events.route_timeout_ms", self.events.route_timeout_ms)?;
        self.server
            .validate_route_deadline("sending.route_timeout_ms", self.sending.route_timeout_ms)?;
        // A claim taken for a crashed send while the send may still be in
        // flight would send it twice.
        if self.sending.stale_after_secs.unsigned_abs() * 1000 <= self.sending.route_timeout_ms {
            return invalid("sending.stale_after_secs must exceed sending.route_timeout_ms");
        }
        if self.relay.batch < 1 || self.relay.concurrency == 0 || self.relay.interval_ms == 0 {
            return invalid("relay.batch, concurrency and interval_ms must be >= 1");
        }
        if self.throttle.max_per_window < 1 || self.throttle.window_secs < 1 {
            return invalid("throttle.max_per_window and window_secs must be >= 1");
        }
        let base = self.providers.receipts_base_url.trim();
        if !(base.is_empty() || base.starts_with("http://") || base.starts_with("https://")) {
            return invalid("providers.receipts_base_url must be empty or an http(s) URL");
        }
        if self.providers.receipt_tolerance_secs < 1 {
            return invalid("providers.receipt_tolerance_secs must be >= 1");
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        let mut secrets = vec![
            SecretSetting::new("database.password", &self.database.password),
            SecretSetting::new("providers.receipt_secret", &self.providers.receipt_secret),
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
    fn production_refuses_each_development_secret_by_name() {
        let (production, defaults) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        let mut s = defaults.clone();
        s.database.password = SecretString::from("db-password-from-the-store");
        let error = refusal(&production, &s);
        assert!(
            error.contains("providers.receipt_secret")
                && error.contains("APP__PROVIDERS__RECEIPT_SECRET")
                && !error.contains("database.password"),
            "{error}"
        );
        let mut s = defaults;
        s.providers.receipt_secret = SecretString::from("receipt-secret-from-the-store");
        let error = refusal(&production, &s);
        assert!(
            error.contains("database.password")
                && error.contains("APP__DATABASE__PASSWORD")
                && !error.contains("receipt_secret"),
            "{error}"
        );
    }

    #[test]
    fn production_with_real_secrets_passes() {
        let (production, mut s) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        s.database.password = SecretString::from("db-password-from-the-store");
        s.providers.receipt_secret = SecretString::from("receipt-secret-from-the-store");
        platform_test_support::sidecar_tokens(&mut s.dapr);
        production.validate(&s).unwrap();
    }
}
