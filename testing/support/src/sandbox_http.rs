//! JSON over HTTP to a sandbox (its API and its `/__sandbox` control API),
//! shared by the in-process sandbox helpers and the SMTP catcher.

use std::time::Duration;

use serde_json::Value;

use crate::eventually;

#[derive(Debug, Clone)]
pub(crate) struct SandboxHttp {
    base: String,
    client: reqwest::Client,
}

impl SandboxHttp {
    pub(crate) fn new(base: String) -> Self {
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    /// The sandbox's base URL, `http://127.0.0.1:<port>`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `GET <base><path>?<query>`; a non-2xx answer is an error.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
        let request = self.client.get(format!("{}{path}", self.base)).query(query);
        expect_success(request.send().await?).await
    }

    /// `POST <base><path>` with a JSON body; a non-2xx answer is an error.
    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let request = self.client.post(format!("{}{path}", self.base)).json(body);
        expect_success(request.send().await?).await
    }

    /// `DELETE <base><path>`; a non-2xx answer is an error.
    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        let request = self.client.delete(format!("{}{path}", self.base));
        expect_success(request.send().await?).await
    }

    /// A `GET` answering `{"data":[...]}`: the items.
    pub(crate) async fn list(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<Vec<Value>> {
        self.list_in("data", path, query).await
    }

    /// A `GET` answering `{"<field>":[...], ...}`: the items.
    pub(crate) async fn list_in(
        &self,
        field: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> anyhow::Result<Vec<Value>> {
        match self.get(path, query).await?[field].take() {
            Value::Array(items) => Ok(items),
            other => anyhow::bail!("{path}: expected {{\"{field}\":[...]}}, got {other}"),
        }
    }

    /// The control API's counters, `GET /__sandbox/stats`.
    pub(crate) async fn stats(&self) -> anyhow::Result<Value> {
        self.get("/__sandbox/stats", &[]).await
    }

    /// The control API's `POST /__sandbox/reset`: back to a fresh sandbox.
    pub(crate) async fn reset(&self) -> anyhow::Result<()> {
        self.post("/__sandbox/reset", &serde_json::json!({}))
            .await
            .map(|_| ())
    }

    /// Waits until `GET <base><path>` answers 2xx.
    pub(crate) async fn wait_until_ok(
        &self,
        path: &str,
        timeout: Duration,
        what: &str,
    ) -> anyhow::Result<()> {
        wait_until_ok(&self.client, &format!("{}{path}", self.base), timeout, what).await
    }
}

/// Polls `GET url` until it answers 2xx, or fails after `timeout`.
pub(crate) async fn wait_until_ok(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<()> {
    eventually(timeout, what, || async {
        client
            .get(url)
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await
}

async fn expect_success(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    anyhow::ensure!(status.is_success(), "sandbox answered {status}: {text}");
    if text.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)?)
}
