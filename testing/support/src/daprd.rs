//! A real `daprd` sidecar for one app, with the repository's components,
//! Resiliency, Subscriptions and Configuration (the app's own,
//! `dapr-config/local/<app id>.yaml`, with its access control), talking
//! mTLS through this process's sentry, with an API token and an app token
//! of its own.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{ChildGuard, tail};
use crate::{TestEnv, eventually, free_port, pinned_dapr_version, repo_root};

/// Ports a sidecar will listen on; chosen before the app starts because the
/// app needs them in its settings.
#[derive(Debug, Clone)]
pub struct DaprdOptions {
    pub app_id: String,
    pub http_port: u16,
    pub grpc_port: u16,
    pub internal_grpc_port: u16,
    pub metrics_port: u16,
    /// Extra environment for the sidecar, e.g. values that components read
    /// with `envRef` (a sandbox's URL on a port chosen by the test).
    pub env: Vec<(String, String)>,
    /// Extra `--resources-path` folders (components or resources a test
    /// generates), loaded after the repository's own.
    pub extra_resources: Vec<PathBuf>,
    /// `DAPR_API_TOKEN`: what a client of this sidecar's API must send
    /// (random per sidecar).
    pub api_token: String,
    /// `APP_API_TOKEN`: what this sidecar sends to its app, and what the
    /// app's Dapr-facing routes require (random per sidecar).
    pub app_token: String,
    /// Instead of the repository's `components/local`, only these
    /// folders (a sidecar without an app that only publishes, say).
    pub only_resources: Option<Vec<PathBuf>>,
    /// mTLS through the test process's sentry (on by default; off only to
    /// prove that a sidecar without it is refused).
    pub mtls: bool,
}

impl DaprdOptions {
    pub fn new(app_id: impl Into<String>) -> anyhow::Result<Self> {
        Ok(Self {
            app_id: app_id.into(),
            http_port: free_port()?,
            grpc_port: free_port()?,
            internal_grpc_port: free_port()?,
            metrics_port: free_port()?,
            env: Vec::new(),
            extra_resources: Vec::new(),
            api_token: crate::random_token(),
            app_token: crate::random_token(),
            only_resources: None,
            mtls: true,
        })
    }
    /// Points a service at this sidecar: its ports and both tokens go into
    /// the service's `dapr` settings.
    pub fn apply_to(&self, dapr: &mut platform_settings::DaprSettings) {
        dapr.http_port = self.http_port;
        dapr.grpc_port = self.grpc_port;
        dapr.api_token = Some(self.api_token.clone().into());
        dapr.app_token = Some(self.app_token.clone().into());
    }
}

#[derive(Debug)]
pub struct Daprd {
    pub options: DaprdOptions,
    log: PathBuf,
    process: ChildGuard,
    /// Sends this sidecar's API token with every request.
    http: reqwest::Client,
    /// What it was started with, for the publishers it starts on demand.
    env: Vec<(String, String)>,
    /// Sidecars of the apps that may publish to a topic this app may not
    /// (pub/sub scopes), started on first use: tests publish "as" them.
    publishers: tokio::sync::Mutex<Vec<Daprd>>,
}

fn daprd_binary() -> PathBuf {
    crate::process::dapr_binary("daprd")
}

/// Refuses to run against anything but the pinned daprd.
fn check_binary_version() -> anyhow::Result<()> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let binary = daprd_binary();
            let out = std::process::Command::new(&binary)
                .arg("--version")
                .output()
                .map_err(|e| format!("cannot run {} (run `make dapr`): {e}", binary.display()))?;
            let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let pinned = pinned_dapr_version().map_err(|e| e.to_string())?;
            if found == pinned {
                Ok(())
            } else {
                Err(format!(
                    "{} is version {found:?}, the repository pins {pinned} (run `make dapr`)",
                    binary.display()
                ))
            }
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

impl Daprd {
    /// Starts the sidecar for an app listening on `app_port` and waits until
    /// it is healthy: components loaded, subscriptions started, app reachable.
    pub async fn start(
        env: &TestEnv,
        options: DaprdOptions,
        app_port: u16,
    ) -> anyhow::Result<Self> {
        Self::start_inner(Self::test_env(env)?, env.dir(), options, Some(app_port)).await
    }

    /// A sidecar without an app (e.g. to publish or invoke as `app_id`).
    pub async fn start_without_app(env: &TestEnv, options: DaprdOptions) -> anyhow::Result<Self> {
        Self::start_inner(Self::test_env(env)?, env.dir(), options, None).await
    }

    /// What every sidecar of the test gets in its environment: the test's
    /// Redis, name resolution, files folder and secrets file.
    fn test_env(env: &TestEnv) -> anyhow::Result<Vec<(String, String)>> {
        Ok(vec![
            ("REDIS_HOST".to_owned(), env.redis.host()),
            (
                "PLATFORM_NAME_RESOLUTION_DB".to_owned(),
                env.name_resolution_db().display().to_string(),
            ),
            (
                "STATEMENTS_DIR".to_owned(),
                env.files_dir().display().to_string(),
            ),
            (
                "PLATFORM_SECRETS_FILE".to_owned(),
                env.secrets_file()?.display().to_string(),
            ),
        ])
    }

    async fn start_inner(
        mut envs: Vec<(String, String)>,
        log_dir: &std::path::Path,
        options: DaprdOptions,
        app_port: Option<u16>,
    ) -> anyhow::Result<Self> {
        check_binary_version()?;
        let mtls = crate::mtls::mtls()?;
        let root = repo_root();
        let path = |p: &str| root.join(p).display().to_string();
        let app_config = format!("dapr-config/local/{}.yaml", options.app_id);
        let config = if root.join(&app_config).is_file() {
            path(&app_config)
        } else {
            path("dapr-config/local/config.yaml")
        };
        let mut args: Vec<String> = vec!["--app-id".into(), options.app_id.clone()];
        if let Some(app_port) = app_port {
            args.extend([
                "--app-port".into(),
                app_port.to_string(),
                "--app-protocol".into(),
                "http".into(),
                "--app-channel-address".into(),
                "127.0.0.1".into(),
            ]);
        }
        if options.mtls {
            args.extend(mtls.daprd_args.iter().cloned());
        }
        args.extend([
            "--dapr-internal-grpc-listen-address".into(),
            "127.0.0.1".into(),
            "--metrics-listen-address".into(),
            "127.0.0.1".into(),
        ]);
        let resources: Vec<String> = match &options.only_resources {
            Some(only) => only.iter().map(|p| p.display().to_string()).collect(),
            None => vec![
                path("components/local"),
                path("dapr-config/resiliency"),
                path("dapr-config/subscriptions"),
            ],
        };
        for folder in resources {
            args.push("--resources-path".into());
            args.push(folder);
        }
        args.extend([
            "--dapr-listen-addresses".into(),
            "127.0.0.1".into(),
            "--dapr-http-port".into(),
            options.http_port.to_string(),
            "--dapr-grpc-port".into(),
            options.grpc_port.to_string(),
            "--dapr-internal-grpc-port".into(),
            options.internal_grpc_port.to_string(),
            "--metrics-port".into(),
            options.metrics_port.to_string(),
            "--config".into(),
            config,
            "--log-level".into(),
            "info".into(),
        ]);
        for extra in &options.extra_resources {
            args.push("--resources-path".into());
            args.push(extra.display().to_string());
        }
        let base = envs.clone();
        envs.extend([
            ("DAPR_TRUST_ANCHORS".to_owned(), mtls.trust_anchors.clone()),
            ("DAPR_API_TOKEN".to_owned(), options.api_token.clone()),
            ("APP_API_TOKEN".to_owned(), options.app_token.clone()),
        ]);
        envs.extend(options.env.iter().cloned());
        let log = unique_log(log_dir, &options.app_id);
        let process = ChildGuard::spawn(
            format!("daprd {}", options.app_id),
            &daprd_binary(),
            &args,
            &envs,
            &log,
        )?;
        let http = crate::client_with_header("dapr-api-token", &options.api_token)?;
        let mut daprd = Self {
            options,
            log,
            process,
            http,
            env: base,
            publishers: tokio::sync::Mutex::new(Vec::new()),
        };
        daprd.wait_healthy(Duration::from_secs(60)).await?;
        let version = daprd.runtime_version().await?;
        let pinned = pinned_dapr_version()?;
        anyhow::ensure!(
            version == pinned,
            "sidecar reports runtime {version}, expected {pinned}"
        );
        Ok(daprd)
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exited() {
                anyhow::bail!(
                    "{} exited with {status}:\n{}",
                    self.process.name,
                    tail(&self.log, 40)
                );
            }
            let healthy = self
                .http
                .get(format!("{}/v1.0/healthz", self.http_base()))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} not healthy after {timeout:?}:\n{}",
                    self.process.name,
                    tail(&self.log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.options.http_port)
    }

    /// A client of this sidecar's API: sends its API token.
    pub fn api_client(&self) -> &reqwest::Client {
        &self.http
    }

    /// This sidecar's app id.
    pub fn app_id(&self) -> &str {
        &self.options.app_id
    }

    /// Stops the sidecar and waits until it is gone.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.process.stop().await
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.id()
    }

    /// `runtimeVersion` from the sidecar's metadata endpoint.
    pub async fn runtime_version(&self) -> anyhow::Result<String> {
        let body: serde_json::Value = self
            .http
            .get(format!("{}/v1.0/metadata", self.http_base()))
            .send()
            .await?
            .json()
            .await?;
        body["runtimeVersion"]
            .as_str()
            .map(ToOwned::to_owned)
            .ok_or_else(|| anyhow::anyhow!("metadata without runtimeVersion: {body}"))
    }

    /// Publishes a complete CloudEvent as is (its `id` is kept), through this
    /// sidecar's pub/sub API.
    pub async fn publish_cloudevent(
        &self,
        pubsub: &str,
        topic: &str,
        event: &serde_json::Value,
    ) -> anyhow::Result<()> {
        self.post_publish(
            pubsub,
            topic,
            "",
            "application/cloudevents+json",
            serde_json::to_vec(event)?,
        )
        .await
    }

    /// Publishes raw bytes with a content type (for malformed-event tests).
    pub async fn publish_raw(
        &self,
        pubsub: &str,
        topic: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        self.post_publish(
            pubsub,
            topic,
            "?metadata.rawPayload=true",
            content_type,
            body,
        )
        .await
    }

    /// Publishes through this sidecar when its app may publish to `topic`
    /// (`publishingScopes` of `components/local/pubsub.yaml`), otherwise
    /// through the sidecar of an app that may, started on first use: what
    /// a test publishes then arrives the way the producer's events do.
    async fn post_publish(
        &self,
        pubsub: &str,
        topic: &str,
        query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let publisher = crate::pubsub_scopes::publisher_of(pubsub, topic)?;
        let mut publishers = self.publishers.lock().await;
        let through = match publisher {
            Some(app) if app != self.options.app_id => {
                if !publishers.iter().any(|p| p.options.app_id == app) {
                    publishers.push(self.start_publisher(&app).await?);
                }
                publishers
                    .iter()
                    .find(|p| p.options.app_id == app)
                    .ok_or_else(|| anyhow::anyhow!("publisher {app} vanished"))?
            }
            _ => self,
        };
        let url = format!(
            "{}/v1.0/publish/{pubsub}/{topic}{query}",
            through.http_base()
        );
        let res = through
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "publish answered {}: {}",
            res.status(),
            res.text().await?
        );
        Ok(())
    }

    /// A sidecar for `app_id` without an app, loading only the pub/sub
    /// component and the secret store: publishes on the test's Redis as
    /// `app_id` (pub/sub scopes allow each app only its own topics).
    pub async fn publisher(env: &TestEnv, app_id: &str) -> anyhow::Result<Daprd> {
        Self::start_publisher_in(Self::test_env(env)?, env.dir(), app_id).await
    }

    async fn start_publisher(&self, app_id: &str) -> anyhow::Result<Daprd> {
        let log_dir = self.log.parent().unwrap_or(std::path::Path::new("."));
        Self::start_publisher_in(self.env.clone(), log_dir, app_id).await
    }

    async fn start_publisher_in(
        envs: Vec<(String, String)>,
        log_dir: &std::path::Path,
        app_id: &str,
    ) -> anyhow::Result<Daprd> {
        let dir = log_dir.join(format!("publisher-{app_id}"));
        std::fs::create_dir_all(&dir)?;
        for file in ["pubsub.yaml", "secretstore.yaml"] {
            std::fs::copy(
                repo_root().join("components/local").join(file),
                dir.join(file),
            )?;
        }
        let mut options = DaprdOptions::new(app_id)?;
        options.only_resources = Some(vec![dir]);
        Box::pin(Self::start_inner(envs, log_dir, options, None)).await
    }

    /// Sum of a Prometheus counter over the series whose labels contain every
    /// `name="value"` pair of `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
        Ok(sum_metric(&self.metrics_text().await?, name, labels))
    }

    /// The sidecar's Prometheus exposition text.
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.options.metrics_port);
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// Waits until the counter reaches at least `at_least`.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        timeout: Duration,
    ) -> anyhow::Result<f64> {
        eventually(
            timeout,
            &format!("{name}{labels:?} >= {at_least}"),
            || async {
                self.metric(name, labels)
                    .await
                    .ok()
                    .filter(|v| *v >= at_least)
            },
        )
        .await
    }

    /// The sidecar's log so far (for assertions and failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// `daprd-<app id>.log`, or `daprd-<app id>-2.log`… when a test starts
/// several sidecars of one app id.
fn unique_log(dir: &std::path::Path, app_id: &str) -> PathBuf {
    let first = dir.join(format!("daprd-{app_id}.log"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| dir.join(format!("daprd-{app_id}-{n}.log")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn sum_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::sum_metric;

    #[test]
    fn sums_matching_series_only() {
        let text = "# HELP x\nx_total{a=\"1\",s=\"retry\"} 2\nx_total{a=\"2\",s=\"retry\"} 3\nx_total{a=\"1\",s=\"success\"} 7\nx_total_other{s=\"retry\"} 100\n";
        assert!((sum_metric(text, "x_total", &[("s", "retry")]) - 5.0).abs() < f64::EPSILON);
        assert!((sum_metric(text, "x_total", &[]) - 12.0).abs() < f64::EPSILON);
        assert!(sum_metric(text, "missing", &[]).abs() < f64::EPSILON);
    }
}
