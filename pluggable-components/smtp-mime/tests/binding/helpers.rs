use std::path::PathBuf;
use std::time::Duration;

use platform_test_support::{Daprd, DaprdOptions, SmtpCatcher, TestEnv};
use serde_json::{Value, json};
use smtp_mime_binding::RunningBinding;

/// The component name the tests invoke.
pub const COMPONENT: &str = "email-mime";
/// No repository component or subscription is scoped to this app id, so
/// the sidecar loads only the unscoped ones and the test's component.
pub const APP_ID: &str = "smtp-mime-test";
pub const FROM: &str = "no-reply@lisasports.test";

/// daprd's answer to `POST /v1.0/bindings/<name>`.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `metadata.<key>` response headers, keys lower-cased (HTTP headers).
    pub metadata: std::collections::HashMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn meta(&self, key: &str) -> &str {
        self.metadata
            .get(&key.to_ascii_lowercase())
            .map_or("", String::as_str)
    }

    /// daprd's error message (`{"errorCode","message"}`).
    pub fn error_message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(ToOwned::to_owned))
            .unwrap_or_else(|| self.body.clone())
    }
}

#[derive(Debug)]
pub struct TestBinding {
    pub catcher: SmtpCatcher,
    pub daprd: Daprd,
    http: reqwest::Client,
    _app: tokio::task::JoinHandle<()>,
    pub binding: Option<RunningBinding>,
    _env: TestEnv,
}

impl TestBinding {
    /// Catcher, binding, daprd with a component pointing at the catcher.
    pub async fn start() -> Self {
        Self::start_with(&[]).await.unwrap()
    }

    /// Like [`Self::start`], with extra component metadata.
    pub async fn start_with(extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let env = TestEnv::start().await?;
        let catcher = SmtpCatcher::start(env.dir()).await?;
        let port = catcher.smtp_port().to_string();
        let mut metadata = vec![
            ("host", "127.0.0.1"),
            ("port", port.as_str()),
            // The catcher offers no STARTTLS, so this sends in plain text
            // (and exercises the TLS set-up the default needs).
            ("tls", "opportunistic"),
            ("emailFrom", "LISA Sports <no-reply@lisasports.test>"),
            ("poolSize", "4"),
            ("timeoutSeconds", "5"),
        ];
        metadata.extend_from_slice(extra);
        let (binding, daprd, app) = start_sidecar(&env, &metadata).await?;
        // Sends the sidecar's API token (ADR 0027).
        let http = daprd.api_client().clone();
        Ok(Self {
            catcher,
            daprd,
            http,
            _app: app,
            binding: Some(binding),
            _env: env,
        })
    }

    /// Invokes the binding's `create` through daprd's HTTP API.
    pub async fn send(&self, data: Value, metadata: Value) -> Answer {
        self.invoke("create", data, metadata).await
    }

    pub async fn invoke(&self, operation: &str, data: Value, metadata: Value) -> Answer {
        let response = self
            .http
            .post(format!(
                "{}/v1.0/bindings/{COMPONENT}",
                self.daprd.http_base()
            ))
            .json(&json!({"operation": operation, "data": data, "metadata": metadata}))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let metadata = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                let key = name.as_str().strip_prefix("metadata.")?;
                Some((key.to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = response.text().await.unwrap();
        Answer {
            status,
            metadata,
            body,
        }
    }
}

/// The folder daprd scans for component sockets in this test.
pub fn sockets_dir(env: &TestEnv) -> PathBuf {
    env.dir().join("sockets")
}

/// Starts the binding (first: daprd discovers sockets only at start-up), a
/// stand-in app (daprd waits for its port) and daprd with one
/// `bindings.smtp-mime` component with `metadata`.
pub async fn start_sidecar(
    env: &TestEnv,
    metadata: &[(&str, &str)],
) -> anyhow::Result<(RunningBinding, Daprd, tokio::task::JoinHandle<()>)> {
    let sockets = sockets_dir(env);
    let binding = RunningBinding::spawn(&sockets).await?;

    let resources = env.dir().join("resources");
    std::fs::create_dir_all(&resources)?;
    let items: Vec<Value> = metadata
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    let component = json!({
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": COMPONENT},
        "spec": {"type": "bindings.smtp-mime", "version": "v1", "metadata": items},
        "scopes": [APP_ID],
    });
    // JSON is YAML.
    std::fs::write(resources.join("email-mime.yaml"), component.to_string())?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app_port = listener.local_addr()?.port();
    let app = tokio::spawn(async move {
        let _ = axum::serve(listener, axum::Router::new()).await;
    });

    let mut options = DaprdOptions::new(APP_ID)?;
    options.extra_resources.push(resources);
    options.env.push((
        "DAPR_COMPONENTS_SOCKETS_FOLDER".into(),
        sockets.display().to_string(),
    ));
    let daprd = Daprd::start(env, options, app_port).await?;
    Ok((binding, daprd, app))
}

/// The one message caught for `to`.
pub async fn only_message(catcher: &SmtpCatcher, to: &str) -> Value {
    let messages = catcher.messages(to).await.unwrap();
    assert_eq!(messages.len(), 1, "messages for {to}: {messages:#?}");
    messages.into_iter().next().unwrap()
}

/// A caught body part without the line ending MIME adds after it.
pub fn body<'a>(mail: &'a Value, part: &str) -> &'a str {
    mail[part]
        .as_str()
        .unwrap_or_else(|| panic!("no {part} part in {mail}"))
        .trim_end_matches('\n')
}
