//! The payment service provider sandbox (`sandboxes/psp`), served in-process
//! on a free port for one test, with helpers for its control API.
//!
//! ```no_run
//! # async fn t() -> anyhow::Result<()> {
//! use platform_test_support::PspSandbox;
//! let psp = PspSandbox::start(Some("http://127.0.0.1:1234/v1/webhooks/psp".into())).await?;
//! psp.configure(serde_json::json!({"fail_next": 1, "fail_status": 503})).await?;
//! // ... point the service at psp.url(), exercise it ...
//! assert_eq!(psp.stats().await?["authorizations_created"], 1);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use psp_sandbox::{Application, RunningSandbox, Settings};
use serde_json::{Value, json};

use crate::sandbox_http::SandboxHttp;

/// A running PSP sandbox; stops when dropped.
#[derive(Debug)]
pub struct PspSandbox {
    http: SandboxHttp,
    port: u16,
    webhook_secret: String,
    running: RunningSandbox,
}

impl PspSandbox {
    /// Starts a sandbox on a free loopback port that POSTs signed webhooks to
    /// `webhook_url` (none: no webhooks until [`Self::set_webhook_url`]).
    /// The secret is the default `whsec_local_sandbox`; answers held back
    /// (slow card, `timeout_next`) wait 30 s unless `slow_ms` is configured.
    pub async fn start(webhook_url: Option<String>) -> anyhow::Result<Self> {
        Self::start_with(Settings::ephemeral(webhook_url)).await
    }

    /// Starts a sandbox with explicit settings (`port` 0 picks a free one).
    pub async fn start_with(settings: Settings) -> anyhow::Result<Self> {
        crate::init_tracing();
        let app = Application::build(settings).await?;
        let port = app.port();
        let webhook_secret = app.webhook_secret();
        Ok(Self {
            http: SandboxHttp::new(format!("http://127.0.0.1:{port}")),
            port,
            webhook_secret,
            running: app.spawn(),
        })
    }

    /// `http://127.0.0.1:<port>`, the provider's base URL.
    pub fn url(&self) -> &str {
        self.http.base()
    }

    /// Writes `<dir>/<name>.yaml`: a Dapr `HTTPEndpoint` named `name` with
    /// this sandbox's URL, scoped to `payments`. The sandbox listens on a
    /// random port, so a test brings its own endpoint: `dir` goes into
    /// `DaprdOptions::extra_resources`, `name` into payments'
    /// `provider.endpoint`.
    pub fn write_http_endpoint(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            format!(
                "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: {name}\n\
                 spec:\n  baseUrl: {}\nscopes:\n  - payments\n",
                self.url()
            ),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The HMAC-SHA256 key of `Psp-Signature`.
    pub fn webhook_secret(&self) -> &str {
        &self.webhook_secret
    }

    /// A valid `Psp-Signature` value for `body`, signed now (to forge
    /// webhooks in tests of the receiver).
    pub fn sign_webhook(&self, body: &[u8]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        psp_sandbox::webhook::sign(&self.webhook_secret, now, body)
    }

    /// `POST /__sandbox/config` (partial): `latency_ms`, `failure_rate`,
    /// `fail_next`, `fail_status`, `timeout_next`, `slow_ms`, `webhook_url`.
    /// Returns the whole configuration now in force.
    pub async fn configure(&self, config: Value) -> anyhow::Result<Value> {
        self.http.post("/__sandbox/config", &config).await
    }

    /// Where webhooks go from now on (`None` stops them).
    pub async fn set_webhook_url(&self, url: Option<&str>) -> anyhow::Result<()> {
        self.configure(json!({ "webhook_url": url }))
            .await
            .map(|_| ())
    }

    /// `GET /__sandbox/stats`: `authorizations_created`, `declines`,
    /// `captures`, `voids`, `refunds`, `requests`, `failures_injected`,
    /// `timeouts_injected`, `webhooks_delivered`, `webhooks_failed`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        self.http.stats().await
    }

    /// Clears objects, idempotency records, events, configuration and stats.
    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http.reset().await
    }

    /// Sends event `event_id` again (same id and body, fresh signature).
    pub async fn resend_webhook(&self, event_id: &str) -> anyhow::Result<()> {
        self.http
            .post(
                &format!("/__sandbox/webhooks/{event_id}/resend"),
                &json!({}),
            )
            .await
            .map(|_| ())
    }

    /// Sends a signed event of `kind` about `data`; returns the event sent
    /// (`{"id","type","created","data"}`).
    pub async fn emit_webhook(&self, kind: &str, data: Value) -> anyhow::Result<Value> {
        self.http
            .post(
                "/__sandbox/webhooks/emit",
                &json!({ "type": kind, "data": data }),
            )
            .await
    }

    /// Every event so far with its delivery state (`id`, `type`, `attempts`,
    /// `delivered`, `last_status`), oldest first.
    pub async fn webhooks(&self) -> anyhow::Result<Vec<Value>> {
        self.http.list("/__sandbox/webhooks", &[]).await
    }

    /// The provider's status query: authorizations with this reference.
    pub async fn authorizations(&self, reference: &str) -> anyhow::Result<Vec<Value>> {
        self.http
            .list("/v1/authorizations", &[("reference", reference)])
            .await
    }

    /// The refunds with this reference.
    pub async fn refunds(&self, reference: &str) -> anyhow::Result<Vec<Value>> {
        self.http
            .list("/v1/refunds", &[("reference", reference)])
            .await
    }

    /// Stops serving (in-flight requests finish, held-back answers are
    /// released) and waits until the server is gone.
    pub async fn stop(self) {
        self.running.stop().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_sandbox_serves_in_process_and_its_helpers_work() {
        let psp = PspSandbox::start(None).await.unwrap();
        let config = psp.configure(json!({"slow_ms": 10})).await.unwrap();
        assert_eq!(config["slow_ms"], 10);
        let created = reqwest::Client::new()
            .post(format!("{}/v1/authorizations", psp.url()))
            .header("Idempotency-Key", "k")
            .json(&json!({"amount": 100, "currency": "EUR",
                "card_number": "4242424242424242", "reference": "pay_1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);
        assert_eq!(psp.stats().await.unwrap()["authorizations_created"], 1);
        assert_eq!(psp.authorizations("pay_1").await.unwrap().len(), 1);
        assert_eq!(psp.webhooks().await.unwrap().len(), 1);
        assert!(
            psp.emit_webhook("refund.succeeded", json!({}))
                .await
                .is_err(),
            "no webhook URL configured"
        );
        let signature = psp.sign_webhook(b"{}");
        assert!(psp_sandbox::webhook::verify(
            psp.webhook_secret(),
            &signature,
            b"{}"
        ));
        psp.reset().await.unwrap();
        assert_eq!(psp.stats().await.unwrap()["authorizations_created"], 0);
        psp.stop().await;
    }
}
