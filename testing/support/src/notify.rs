//! The SMS/push provider sandbox (`sandboxes/notify`), served in-process on
//! a free port for one test, with helpers for its control API.
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use platform_test_support::NotifySandbox;
//! let notify = NotifySandbox::start().await?;
//! notify.configure("sms-primary", serde_json::json!({"mode": "fail", "fail_status": 503})).await?;
//! // ... point the service at notify.url() (+ "/sms-primary", "/sms-secondary", "/push") ...
//! let sent = notify.messages("sms-secondary", "+4915112345678").await?;
//! assert_eq!(sent.len(), 1);
//! # Ok(()) }
//! ```

use notify_sandbox::{Application, RunningSandbox, Settings};
use serde_json::Value;

use crate::sandbox_http::SandboxHttp;

/// A running notification sandbox; stops when dropped.
#[derive(Debug)]
pub struct NotifySandbox {
    http: SandboxHttp,
    port: u16,
    running: RunningSandbox,
}

impl NotifySandbox {
    /// Starts a sandbox on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        crate::init_tracing();
        let app = Application::build(Settings::ephemeral()).await?;
        let port = app.port();
        Ok(Self {
            http: SandboxHttp::new(format!("http://127.0.0.1:{port}")),
            port,
            running: app.spawn(),
        })
    }

    /// `http://127.0.0.1:<port>`; a provider's API is under `/<provider>`.
    pub fn url(&self) -> &str {
        self.http.base()
    }

    /// `http://127.0.0.1:<port>/<provider>` (`sms-primary`, `sms-secondary`, `push`).
    pub fn provider_url(&self, provider: &str) -> String {
        format!("{}/{provider}", self.http.base())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `POST /__sandbox/{provider}/config` (partial): `mode`
    /// (`accept|fail|throttle|delay`), `fail_next`, `fail_status`,
    /// `delay_ms`. Returns the provider's whole configuration.
    pub async fn configure(&self, provider: &str, config: Value) -> anyhow::Result<Value> {
        self.http
            .post(&format!("/__sandbox/{provider}/config"), &config)
            .await
    }

    /// Messages `provider` accepted for recipient `to`, oldest first.
    pub async fn messages(&self, provider: &str, to: &str) -> anyhow::Result<Vec<Value>> {
        self.list(provider, &[("to", to)]).await
    }

    /// Messages `provider` accepted with the caller's `reference`.
    pub async fn messages_with_reference(
        &self,
        provider: &str,
        reference: &str,
    ) -> anyhow::Result<Vec<Value>> {
        self.list(provider, &[("reference", reference)]).await
    }

    /// Every message `provider` accepted.
    pub async fn all_messages(&self, provider: &str) -> anyhow::Result<Vec<Value>> {
        self.list(provider, &[]).await
    }

    /// Delivery receipts the sandbox has posted for `reference`, oldest
    /// first: `{"provider","url","receipt":{..},"attempts","last_status","delivered"}`.
    pub async fn receipts(&self, reference: &str) -> anyhow::Result<Vec<Value>> {
        self.http
            .list("/__sandbox/receipts", &[("reference", reference)])
            .await
    }

    /// `{"sms-primary":{"accepted","rejected","replayed"},"sms-secondary":{..},"push":{..}}`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.http.stats().await
    }

    /// Forgets messages, configurations and counters.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http.reset().await
    }

    /// Stops serving and waits until the server is gone.
    pub async fn stop(self) {
        self.running.stop().await;
    }

    async fn list(&self, provider: &str, query: &[(&str, &str)]) -> anyhow::Result<Vec<Value>> {
        self.http
            .list(&format!("/{provider}/messages"), query)
            .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_sandbox_serves_in_process_and_its_helpers_work() {
        let notify = NotifySandbox::start().await.unwrap();
        let config = notify
            .configure("sms-primary", json!({"fail_next": 1}))
            .await
            .unwrap();
        assert_eq!(config["fail_next"], 1);
        let send = || {
            reqwest::Client::new()
                .post(format!("{}/messages", notify.provider_url("sms-primary")))
                .json(&json!({"to": "+4915112345678", "body": "Hi", "reference": "n1"}))
                .send()
        };
        assert_eq!(send().await.unwrap().status().as_u16(), 503);
        assert_eq!(send().await.unwrap().status().as_u16(), 202);
        let sent = notify
            .messages("sms-primary", "+4915112345678")
            .await
            .unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            notify
                .messages_with_reference("sms-primary", "n1")
                .await
                .unwrap()
                .len(),
            1
        );
        let stats = notify.stats().await.unwrap();
        assert_eq!(stats["sms-primary"]["accepted"], 1);
        assert_eq!(stats["sms-primary"]["rejected"], 1);
        assert!(notify.receipts("n1").await.unwrap().is_empty());
        notify.reset().await.unwrap();
        assert!(notify.all_messages("sms-primary").await.unwrap().is_empty());
        notify.stop().await;
    }
}
