//! Typed settings of the payments service.

use std::time::Duration;

use platform_settings::{
    AuthSettings, DaprSettings, SecretSetting, ServerSettings, SettingsError, TelemetrySettings,
    Validate,
};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub dapr: DaprSettings,
    pub telemetry: TelemetrySettings,
    pub payments: PaymentsSettings,
    pub provider: ProviderSettings,
    pub reconciliation: ReconciliationSettings,
    pub outbox: OutboxSettings,
    pub auth: AuthSettings,
}

/// The relay that publishes the outbox records of `payments.state_store`.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub pubsub: String,
    pub topic: String,
    /// Records per round.
    pub batch: usize,
    /// A round at least this often (and at once after each commit).
    pub interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsSettings {
    /// Dapr state store of payments, their outbox records and
    /// reconciliation intents (transactions, Query API).
    pub state_store: String,
    /// Dapr state store of idempotency records and webhook event ids.
    pub idempotency_store: String,
    /// How long an `Idempotency-Key` is remembered (at least 24 h).
    pub idempotency_ttl_secs: u64,
    /// How long a request may hold its key in flight before another request
    /// with the same key may take over (a crashed instance).
    pub idempotency_lease_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderSettings {
    /// Name of the Dapr `HTTPEndpoint` resource of the provider.
    pub endpoint: String,
    /// Our own cap on a provider call; longer than the sidecar's timeout
    /// with its retries (dapr-config/resiliency/payments.yaml).
    pub timeout_ms: u64,
    /// Deadline of the routes that call the provider (confirm, capture,
    /// cancel, refund, the webhook and the reconciliation trigger), in place
    /// of `server.request_timeout_ms`: one provider call and the save of its
    /// answer fit (docs/adr/0026-timeout-hierarchy.md).
    pub route_timeout_ms: u64,
    /// HMAC key of the provider's webhook signatures.
    pub webhook_secret: SecretString,
    pub webhook_tolerance_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconciliationSettings {
    /// Name of the cron input binding; Dapr POSTs to `/<binding>`.
    pub binding: String,
    /// After this long without any provider record, an attempt failed.
    pub vanished_after_secs: i64,
    /// A provider call's intent is first checked this long after the call
    /// started: above `provider.timeout_ms`, so no check races the call.
    pub first_check_after_secs: i64,
    /// Intents read per round.
    pub batch: usize,
    /// Payments checked at once.
    pub concurrency: usize,
    /// A round starts no check after this long (below the request timeout).
    pub round_budget_ms: u64,
    /// How long a round's claim on a payment keeps other rounds off it.
    pub lease_secs: i64,
}

impl ProviderSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn route_timeout(&self) -> Duration {
        Duration::from_millis(self.route_timeout_ms)
    }
}

impl Validate for Settings {
    fn validate(&self) -> Result<(), SettingsError> {
        self.server.validate()?;
        self.dapr.validate()?;
        self.auth.validate()?;
        let invalid = |m: &str| Err(SettingsError::Invalid(m.into()));
        if self.payments.state_store.is_empty() || self.payments.idempotency_store.is_empty() {
            return invalid("payments.state_store and payments.idempotency_store must be set");
        }
        if self.payments.state_store == self.payments.idempotency_store {
            return invalid("payments.idempotency_store must not be the payments state store");
        }
        if self.payments.idempotency_ttl_secs < 24 * 3600 {
            return invalid("payments.idempotency_ttl_secs must be at least 86400 (24 h)");
        }
        if self.payments.idempotency_lease_secs == 0 {
            return invalid("payments.idempotency_lease_secs must be positive");
        }
        if self.provider.endpoint.is_empty() || self.provider.timeout_ms == 0 {
            return invalid("provider.endpoint and provider.timeout_ms must be set");
        }
        self.server
            .validate_route_deadline("provider.route_timeout_ms", self.provider.route_timeout_ms)?;
        if self.provider.route_timeout_ms <= self.provider.timeout_ms {
            return invalid("provider.route_timeout_ms must exceed provider.timeout_ms");
        }
        if self.provider.webhook_tolerance_secs <= 0 {
            return invalid("provider.webhook_tolerance_secs must be positive");
        }
        if self.reconciliation.binding.is_empty()
            || self.reconciliation.binding.contains('/')
            || self.reconciliation.vanished_after_secs <= 0
        {
            return invalid("reconciliation.binding (no '/') and vanished_after_secs must be set");
        }
        let r = &self.reconciliation;
        if r.first_check_after_secs <= 0
            || r.batch == 0
            || r.concurrency == 0
            || r.round_budget_ms == 0
            || r.lease_secs <= 0
        {
            return invalid(
                "reconciliation.first_check_after_secs, batch, concurrency, round_budget_ms and lease_secs must be positive",
            );
        }
        if u64::try_from(r.first_check_after_secs).unwrap_or(0) * 1000 <= self.provider.timeout_ms {
            return invalid(
                "reconciliation.first_check_after_secs must be above provider.timeout_ms",
            );
        }
        if self.outbox.pubsub.is_empty()
            || self.outbox.topic.is_empty()
            || self.outbox.batch == 0
            || self.outbox.interval_ms == 0
        {
            return invalid("outbox.pubsub, topic, batch and interval_ms must be set");
        }
        Ok(())
    }

    fn secrets(&self) -> Vec<SecretSetting<'_>> {
        let mut secrets = vec![SecretSetting::new(
            "provider.webhook_secret",
            &self.provider.webhook_secret,
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
    fn production_refuses_the_sandbox_webhook_secret_and_takes_a_real_one() {
        let (production, mut s) = production_settings::<Settings>(env!("CARGO_MANIFEST_DIR"));
        let error = refusal(&production, &s);
        assert!(
            error.contains("provider.webhook_secret")
                && error.contains("APP__PROVIDER__WEBHOOK_SECRET"),
            "{error}"
        );
        s.provider.webhook_secret = SecretString::from("whsec_from_the_store");
        platform_test_support::sidecar_tokens(&mut s.dapr);
        production.validate(&s).unwrap();
    }
}
