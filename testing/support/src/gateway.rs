//! The edge gateway as `make up` runs it (ADR 0025): real Caddy with
//! `gateway/Caddyfile` in front of real gateway daprds with
//! `components/gateway/*` and `dapr-config/gateway/*`, on free ports. The
//! daprd flags come from `gateway_daprd_flags` in `scripts/lib/gateway.sh`,
//! so `make up` and the tests cannot drift apart.
//!
//! [`RotatingIssuer`] is a token issuer whose JWKS can change while the
//! gateway runs (key rotation); it mints tokens in the shape `auth` issues.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform_auth_token::{Jwk, JwkSet};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::process::{ChildGuard, tail};
use crate::{TestEnv, free_port, repo_root};

/// ES256 signing keys and the JWKS that publishes some of them.
#[derive(Debug)]
pub struct RotatingIssuer {
    issuer: String,
    jwks_url: String,
    keys: Vec<(String, EcdsaKeyPair)>,
    published: Arc<Mutex<Vec<Jwk>>>,
    rng: SystemRandom,
    server: JoinHandle<()>,
}

impl RotatingIssuer {
    /// An issuer with one key (index 0), published.
    pub async fn start() -> anyhow::Result<Self> {
        let published: Arc<Mutex<Vec<Jwk>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let jwks = Arc::clone(&published);
        let app = Router::new().route(
            "/oauth2/jwks",
            get(move || {
                let keys = jwks.lock().map(|k| k.clone()).unwrap_or_default();
                std::future::ready(axum::Json(JwkSet { keys }))
            }),
        );
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut issuer = Self {
            jwks_url: format!("{base}/oauth2/jwks"),
            issuer: base,
            keys: Vec::new(),
            published,
            rng: SystemRandom::new(),
            server,
        };
        issuer.add_key()?;
        Ok(issuer)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn jwks_url(&self) -> &str {
        &self.jwks_url
    }

    /// Makes a service trust this issuer.
    pub fn apply_to(&self, auth: &mut platform_settings::AuthSettings) {
        auth.issuer = self.issuer.clone();
        auth.jwks_url = Some(self.jwks_url.clone());
    }

    /// A new key, published in the JWKS; returns its index.
    pub fn add_key(&mut self) -> anyhow::Result<usize> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.rng)
            .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &self.rng)
                .map_err(|_| anyhow::anyhow!("cannot load the P-256 key"))?;
        let kid = format!("edge-{}", uuid::Uuid::new_v4().simple());
        let jwk = Jwk::es256(kid.clone(), key.public_key().as_ref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.published
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .push(jwk);
        self.keys.push((kid, key));
        Ok(self.keys.len() - 1)
    }

    /// Removes key `index` from the JWKS (it can still sign: a rotated-out key).
    pub fn unpublish(&self, index: usize) -> anyhow::Result<()> {
        let kid = &self.keys[index].0;
        self.published
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .retain(|k| k.kid.as_deref() != Some(kid.as_str()));
        Ok(())
    }

    /// An access token signed by key `key` for `audience`, of client
    /// `client_id`, with `scopes`, expiring `lifetime_secs` from now.
    pub fn token(
        &self,
        key: usize,
        audience: &str,
        client_id: &str,
        scopes: &[&str],
        lifetime_secs: i64,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let (kid, signer) = &self.keys[key];
        let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
        let claims = json!({
            "iss": self.issuer, "sub": client_id, "aud": audience, "client_id": client_id,
            "iat": now, "exp": now + lifetime_secs, "jti": uuid::Uuid::new_v4().to_string(),
            "scope": scopes.join(" "),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = signer
            .sign(&self.rng, signing_input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()));
        format!("{signing_input}.{}", signature.unwrap_or_default())
    }
}

impl Drop for RotatingIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What the gateway trusts and how hard it limits.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// `iss` the token gateways require.
    pub issuer: String,
    /// Where they read the JWKS.
    pub jwks_url: String,
    /// Services with a token-checking gateway daprd (audience = the name).
    pub services: Vec<String>,
    /// Requests per second per (client id, path) on token routes.
    pub client_rps: u32,
    /// Requests per second per (client IP, path) on public routes.
    pub ip_rps: u32,
}

#[derive(Debug)]
struct GatewayDaprd {
    /// `public` or the service (its audience).
    name: String,
    http: u16,
    grpc: u16,
    internal: u16,
    metrics: u16,
    health: u16,
    log: PathBuf,
    process: Option<ChildGuard>,
}

/// Caddy and the gateway daprds, started and ready.
#[derive(Debug)]
pub struct EdgeGateway {
    port: u16,
    options: EdgeOptions,
    name_resolution_db: PathBuf,
    daprds: Vec<GatewayDaprd>,
    caddy: ChildGuard,
    caddy_log: PathBuf,
}

fn daprd_binary() -> PathBuf {
    crate::process::dapr_binary("daprd")
}

/// The daprd flags `make up` uses for this gateway daprd.
fn daprd_flags(root: &Path, d: &GatewayDaprd) -> anyhow::Result<Vec<String>> {
    // This test process's sentry, not make up's (testing/support/src/mtls.rs).
    let mtls = crate::mtls::mtls()?;
    let sentry = mtls
        .daprd_args
        .iter()
        .skip_while(|a| a.as_str() != "--sentry-address")
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("no --sentry-address in the mTLS flags"))?;
    let out = std::process::Command::new("bash")
        .env("MTLS_SENTRY_ADDRESS", sentry)
        .arg("-c")
        .arg(r#"here="$1"; shift; . "$here/scripts/lib/gateway.sh"; gateway_daprd_flags "$@""#)
        .arg("gateway-flags")
        .arg(root)
        .arg(&d.name)
        .args([d.http, d.grpc, d.internal, d.metrics, d.health].map(|p| p.to_string()))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "gateway_daprd_flags failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(ToOwned::to_owned)
        .collect())
}

impl EdgeGateway {
    /// Starts a gateway daprd per service in `options.services` plus the
    /// public one, and Caddy in front; waits until Caddy answers and every
    /// daprd is healthy. Services not listed route to a closed port.
    pub async fn start(env: &TestEnv, options: EdgeOptions) -> anyhow::Result<Self> {
        let root = repo_root();
        let mut daprds = Vec::new();
        for name in std::iter::once("public".to_owned()).chain(options.services.iter().cloned()) {
            daprds.push(GatewayDaprd {
                log: env.dir().join(format!("gateway-daprd-{name}.log")),
                name,
                http: free_port()?,
                grpc: free_port()?,
                internal: free_port()?,
                metrics: free_port()?,
                health: free_port()?,
                process: None,
            });
        }
        let port = free_port()?;
        let closed = free_port()?;
        let upstream = |name: &str| {
            let p = daprds
                .iter()
                .find(|d| d.name == name)
                .map_or(closed, |d| d.http);
            format!("127.0.0.1:{p}")
        };
        let caddy_env = vec![
            ("GATEWAY_PORT".to_owned(), port.to_string()),
            ("GATEWAY_BIND".to_owned(), "127.0.0.1".to_owned()),
            ("GATEWAY_PUBLIC_UPSTREAM".to_owned(), upstream("public")),
            ("GATEWAY_PAYMENTS_UPSTREAM".to_owned(), upstream("payments")),
            (
                "GATEWAY_BOOKKEEPING_UPSTREAM".to_owned(),
                upstream("bookkeeping"),
            ),
            (
                "GATEWAY_COMMUNICATION_UPSTREAM".to_owned(),
                upstream("communication"),
            ),
            ("GATEWAY_BOOKINGS_UPSTREAM".to_owned(), upstream("bookings")),
            // Caddy keeps nothing in $HOME for this test.
            (
                "XDG_DATA_HOME".to_owned(),
                env.dir().join("caddy-data").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".to_owned(),
                env.dir().join("caddy-config").display().to_string(),
            ),
        ];
        let caddy_log = env.dir().join("gateway-caddy.log");
        let caddy = ChildGuard::spawn(
            "caddy",
            Path::new("caddy"),
            &[
                "run".into(),
                "--config".into(),
                root.join("gateway/Caddyfile").display().to_string(),
                "--adapter".into(),
                "caddyfile".into(),
            ],
            &caddy_env,
            &caddy_log,
        )?;
        let mut gateway = Self {
            port,
            options,
            name_resolution_db: env.name_resolution_db(),
            daprds,
            caddy,
            caddy_log,
        };
        gateway.start_daprds().await?;
        gateway.wait_caddy().await?;
        Ok(gateway)
    }

    async fn start_daprds(&mut self) -> anyhow::Result<()> {
        let root = repo_root();
        for d in &mut self.daprds {
            let audience = if d.name == "public" { "-" } else { &d.name };
            let envs = vec![
                ("GATEWAY_ISSUER".to_owned(), self.options.issuer.clone()),
                ("GATEWAY_JWKS_URL".to_owned(), self.options.jwks_url.clone()),
                ("GATEWAY_AUDIENCE".to_owned(), audience.to_owned()),
                (
                    "GATEWAY_CLIENT_RPS".to_owned(),
                    self.options.client_rps.to_string(),
                ),
                ("GATEWAY_IP_RPS".to_owned(), self.options.ip_rps.to_string()),
                (
                    "PLATFORM_NAME_RESOLUTION_DB".to_owned(),
                    self.name_resolution_db.display().to_string(),
                ),
                (
                    "DAPR_TRUST_ANCHORS".to_owned(),
                    crate::mtls::mtls()?.trust_anchors.clone(),
                ),
            ];
            let flags = daprd_flags(&root, d)?;
            d.process = Some(ChildGuard::spawn(
                format!("gateway daprd {}", d.name),
                &daprd_binary(),
                &flags,
                &envs,
                &d.log,
            )?);
        }
        let http = reqwest::Client::new();
        for d in &mut self.daprds {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(status) = d.process.as_mut().and_then(ChildGuard::exited) {
                    anyhow::bail!(
                        "gateway daprd {} exited with {status}:\n{}",
                        d.name,
                        tail(&d.log, 40)
                    );
                }
                let healthy = http
                    .get(format!("http://127.0.0.1:{}/v1.0/healthz", d.health))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if healthy {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "gateway daprd {} not healthy after 60 s:\n{}",
                    d.name,
                    tail(&d.log, 40)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn wait_caddy(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.caddy.exited() {
                anyhow::bail!("caddy exited with {status}:\n{}", tail(&self.caddy_log, 40));
            }
            // Caddy's own answer for an unknown route.
            if http
                .get(self.url("/"))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::NOT_FOUND)
            {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "caddy not answering after 30 s:\n{}",
                tail(&self.caddy_log, 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port><path>`, e.g. `url("/payments/v1/payments")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Stops every gateway daprd and starts them again on the same ports
    /// (what a rolling restart does to each replica).
    pub async fn restart_daprds(&mut self) -> anyhow::Result<()> {
        for d in &mut self.daprds {
            if let Some(mut p) = d.process.take() {
                p.stop().await?;
            }
        }
        self.start_daprds().await
    }

    /// The gateway's logs, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = format!("--- caddy\n{}\n", tail(&self.caddy_log, lines));
        for d in &self.daprds {
            out.push_str(&format!("--- daprd {}\n{}\n", d.name, tail(&d.log, lines)));
        }
        out
    }
}
