use std::path::{Path, PathBuf};
use std::time::Duration;

use payments::settings::Settings;
use platform_settings::Source;
pub use platform_test_support::authorized_client;
use platform_test_support::{
    Daprd, DaprdOptions, PspSandbox, RunningApp, TestDatabase, TestEnv, TestIssuer, eventually,
    start_with_options,
};
use serde_json::{Value, json};

pub struct TestApp {
    pub app: RunningApp,
    pub daprd: Daprd,
    pub env: TestEnv,
    pub issuer: TestIssuer,
    /// Sends a token with `payments:read` and `payments:write`.
    pub http: reqwest::Client,
    /// The provider sandbox, when the test has one.
    pub psp: Option<PspSandbox>,
    /// The PostgreSQL database behind `payments-state`.
    pub db: TestDatabase,
    /// The settings the service was built with (sidecar ports included), to
    /// build another instance against the same sidecar.
    pub settings: Settings,
    _resources: Option<tempfile::TempDir>,
}

/// A database of its own for this test's `payments-state`, and the sidecar
/// environment that points the component at it.
pub async fn state_database(dapr: &mut DaprdOptions) -> TestDatabase {
    let db = TestDatabase::create_for("payments")
        .await
        .expect("a payments test database (make infra)");
    dapr.env.push((
        "PAYMENTS_STATE_DATABASE".into(),
        db.settings().database_name.clone(),
    ));
    db
}

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    let mut settings = source.load::<Settings>().expect("payments settings");
    settings.server.port = 0;
    settings
}

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// The test's own HTTPEndpoint (the sandbox listens on a random port), the
/// repository's provider Resiliency re-targeted to it, and a cron binding
/// that reconciles every second.
fn provider_resources(psp_url: &str, tweak: &dyn Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let endpoint = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: psp-test\nspec:\n  baseUrl: {psp_url}\nscopes:\n  - payments\n"
    );
    std::fs::write(dir.path().join("psp-test.yaml"), endpoint).expect("write endpoint");
    let resiliency = std::fs::read_to_string(repo_file("dapr-config/resiliency/payments.yaml"))
        .expect("the provider resiliency file")
        .replace("name: payments-provider", "name: payments-provider-test")
        .replace("\n      psp:\n", "\n      psp-test:\n");
    let resiliency = tweak(resiliency);
    assert!(
        resiliency.contains("psp-test:"),
        "resiliency target renamed"
    );
    std::fs::write(dir.path().join("resiliency-test.yaml"), resiliency).expect("write resiliency");
    let cron = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: payments-reconcile-test\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n    - name: schedule\n      value: \"@every 1s\"\n    - name: direction\n      value: \"input\"\nscopes:\n  - payments\n";
    std::fs::write(dir.path().join("cron-test.yaml"), cron).expect("write cron");
    dir
}

impl TestApp {
    /// payments and its sidecar, no provider.
    pub async fn spawn() -> Self {
        Self::start(None).await
    }

    /// payments, its sidecar and the PSP sandbox, which sends its webhooks
    /// to payments.
    pub async fn spawn_with_psp() -> Self {
        Self::spawn_with_psp_policy(&|policy| policy).await
    }

    /// Like [`Self::spawn_with_psp`], with the provider Resiliency policy
    /// changed by `tweak` (e.g. no retries).
    pub async fn spawn_with_psp_policy(tweak: &dyn Fn(String) -> String) -> Self {
        Self::start(Some(tweak)).await
    }

    /// payments and its sidecar; with `provider_tweak`, also the PSP sandbox
    /// behind the test's own endpoint and the tweaked provider Resiliency.
    async fn start(provider_tweak: Option<&dyn Fn(String) -> String>) -> Self {
        Self::start_with(provider_tweak, &|_| {}).await
    }

    /// [`Self::spawn_with_psp`] with settings changed by `tweak`.
    pub async fn spawn_with_psp_settings(tweak: &dyn Fn(&mut Settings)) -> Self {
        Self::start_with(Some(&|policy| policy), tweak).await
    }

    /// [`Self::start`] with settings changed by `settings_tweak`.
    pub async fn start_with(
        provider_tweak: Option<&dyn Fn(String) -> String>,
        settings_tweak: &dyn Fn(&mut Settings),
    ) -> Self {
        let env = TestEnv::start().await.expect("test env");
        let mut settings = settings();
        settings_tweak(&mut settings);
        let issuer = TestIssuer::start().await.expect("token issuer");
        issuer.apply_to(&mut settings.auth);
        let mut dapr = DaprdOptions::new("payments").expect("sidecar ports");
        let provider = match provider_tweak {
            Some(tweak) => {
                let psp = PspSandbox::start(None).await.expect("psp sandbox");
                let resources = provider_resources(psp.url(), tweak);
                settings.provider.endpoint = "psp-test".into();
                settings.provider.webhook_secret = psp.webhook_secret().to_owned().into();
                settings.reconciliation.binding = "payments-reconcile-test".into();
                dapr.extra_resources.push(resources.path().to_owned());
                Some((psp, resources))
            }
            None => None,
        };
        let db = state_database(&mut dapr).await;
        dapr.apply_to(&mut settings.dapr);
        let built = settings.clone();
        let (app, daprd) = start_with_options(&env, dapr, |_| async move {
            Ok(payments::startup::build(built).await?)
        })
        .await
        .expect("payments with its sidecar");
        app.wait_ready(Duration::from_secs(20))
            .await
            .expect("payments ready");
        if let Some((psp, _)) = &provider {
            psp.set_webhook_url(Some(&app.url("/v1/webhooks/psp")))
                .await
                .expect("webhook url");
        }
        let token = issuer.token("payments", &["payments:read", "payments:write"]);
        let http = authorized_client(&token).expect("client");
        let (psp, resources) = provider.unzip();
        Self {
            app,
            daprd,
            env,
            issuer,
            http,
            psp,
            db,
            settings,
            _resources: resources,
        }
    }

    pub fn psp(&self) -> &PspSandbox {
        self.psp.as_ref().expect("a test with the sandbox")
    }

    pub async fn stat(&self, name: &str) -> u64 {
        self.psp().stats().await.expect("stats")[name]
            .as_u64()
            .unwrap_or(0)
    }

    pub async fn create_payment(&self, body: &Value) -> reqwest::Response {
        self.post("/v1/payments", body, None).await
    }

    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(self.app.url(path)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request")
    }

    /// Creates a payment and returns its id.
    pub async fn new_payment(&self, amount: i64, capture_method: &str) -> String {
        let res = self
            .create_payment(&json!({ "amount": amount, "currency": "EUR",
                "customer_reference": "cus_t", "capture_method": capture_method }))
            .await;
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.expect("json");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn confirm(&self, id: &str, card: &str, key: Option<&str>) -> reqwest::Response {
        self.post(
            &format!("/v1/payments/{id}/confirm"),
            &json!({ "card_number": card }),
            key,
        )
        .await
    }

    pub async fn get_payment(&self, id: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(&format!("/v1/payments/{id}")))
            .send()
            .await
            .expect("request")
    }

    pub async fn payment(&self, id: &str) -> Value {
        self.get_payment(id).await.json().await.expect("json")
    }

    /// Waits until the payment has `status`.
    pub async fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        eventually(timeout, &format!("payment {id} to be {status}"), || async {
            let p = self.payment(id).await;
            (p["status"] == status).then_some(p)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.daprd.log_tail(30)))
    }

    /// How many payments are saved in the state store.
    pub async fn payment_count(&self) -> i64 {
        payment_count(&self.db).await
    }

    /// Waits until `event_type` about `subject` was published, then checks
    /// that it was published exactly once.
    pub async fn expect_event_once(&self, event_type: &str, subject: &str) {
        eventually(Duration::from_secs(20), event_type, || async {
            (self.events(event_type, subject).await >= 1).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.daprd.log_tail(40)));
        // Give a duplicate the time to show up.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            self.events(event_type, subject).await,
            1,
            "{event_type} published more than once"
        );
    }

    /// The events of `event_type` published about `subject` so far.
    pub async fn events(&self, event_type: &str, subject: &str) -> usize {
        let reply = self
            .env
            .redis
            .command(&["XRANGE", "payments", "-", "+"])
            .await
            .unwrap_or_default();
        let type_field = format!("\"type\":\"{event_type}\"");
        reply
            .lines()
            .filter(|l| l.contains(&type_field) && l.contains(subject))
            .count()
    }
}

/// How many rows of `payments-state` have keys starting with `prefix`
/// (`payment:`, `outbox:`, `reconcile:`).
pub async fn state_rows(db: &TestDatabase, prefix: &str) -> i64 {
    let mut conn = db.connect().await.expect("state database");
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('payments_state')::text")
        .fetch_one(&mut conn)
        .await
        .expect("catalog");
    if exists.is_none() {
        return 0;
    }
    sqlx::query_scalar("SELECT count(*) FROM payments_state WHERE key LIKE $1")
        .bind(format!("payments||{prefix}%"))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

/// How many payments are saved in `db` (the `payments-state` table).
pub async fn payment_count(db: &TestDatabase) -> i64 {
    let mut conn = db.connect().await.expect("state database");
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass('payments_state')::text")
        .fetch_one(&mut conn)
        .await
        .expect("catalog");
    if exists.is_none() {
        return 0;
    }
    sqlx::query_scalar("SELECT count(*) FROM payments_state WHERE key LIKE 'payments||payment:%'")
        .fetch_one(&mut conn)
        .await
        .expect("count")
}
