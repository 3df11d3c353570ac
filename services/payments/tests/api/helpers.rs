use std::path::Path;

use payments::settings::Settings;
use platform_settings::Source;
pub use platform_test_support::authorized_client;
use platform_test_support::{Daprd, RunningApp, TestEnv, TestIssuer, start_with_sidecar};
use serde_json::Value;

pub struct TestApp {
    pub app: RunningApp,
    pub daprd: Daprd,
    pub env: TestEnv,
    pub issuer: TestIssuer,
    /// Sends a token with `payments:read` and `payments:write`.
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let env = TestEnv::start().await.expect("test env");
        let source = Source {
            config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
            environment: "test".into(),
        };
        let mut settings = Settings::load(&source).expect("payments settings");
        settings.server.port = 0;
        let issuer = TestIssuer::start().await.expect("token issuer");
        settings.auth.issuer = issuer.issuer().to_owned();
        settings.auth.jwks_url = Some(issuer.jwks_url().to_owned());
        let (app, daprd) = start_with_sidecar(&env, "payments", |dapr| {
            settings.dapr.http_port = dapr.http_port;
            settings.dapr.grpc_port = dapr.grpc_port;
            async move { Ok(payments::startup::build(settings).await?) }
        })
        .await
        .expect("payments with its sidecar");
        let token = issuer.token("payments", &["payments:read", "payments:write"]);
        let http = authorized_client(&token).expect("client");
        Self {
            app,
            daprd,
            env,
            issuer,
            http,
        }
    }

    pub async fn create_payment(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.app.url("/v1/payments"))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_payment(&self, id: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(&format!("/v1/payments/{id}")))
            .send()
            .await
            .expect("request")
    }

    /// Keys payments has written to its state store.
    pub async fn payment_keys(&self) -> String {
        self.env
            .redis
            .command(&["KEYS", "payments||payment:*"])
            .await
            .expect("redis")
    }
}
