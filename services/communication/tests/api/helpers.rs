use std::path::Path;
use std::time::Duration;

use communication::settings::Settings;
use platform_settings::Source;
pub use platform_test_support::authorized_client;
use platform_test_support::{
    Daprd, DaprdOptions, RunningApp, TestDatabase, TestEnv, TestIssuer, eventually,
    start_with_options,
};
use serde_json::{Value, json};
use sqlx::Row;

pub const PUBSUB: &str = "pubsub";

/// Where the sidecar's bindings point (component envRefs).
#[derive(Debug, Clone)]
pub struct Providers {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// Base URL of the notification sandbox (`/sms-primary`, ... below it).
    pub notify_url: String,
}

impl Providers {
    /// Nothing listens there: for tests that send nothing.
    pub fn unreachable() -> Self {
        let port = platform_test_support::free_port().expect("port");
        Self {
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
            notify_url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn sidecar_env(&self) -> Vec<(String, String)> {
        vec![
            ("COMMUNICATION_SMTP_HOST".into(), self.smtp_host.clone()),
            ("COMMUNICATION_SMTP_PORT".into(), self.smtp_port.to_string()),
            (
                "COMMUNICATION_SMS_PRIMARY_URL".into(),
                format!("{}/sms-primary", self.notify_url),
            ),
            (
                "COMMUNICATION_SMS_SECONDARY_URL".into(),
                format!("{}/sms-secondary", self.notify_url),
            ),
            (
                "COMMUNICATION_PUSH_URL".into(),
                format!("{}/push", self.notify_url),
            ),
        ]
    }
}

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    let mut settings = source.load::<Settings>().expect("communication settings");
    // No delivery receipts unless a test asks for them (receipts.rs), so
    // that the other tests observe `sent`.
    settings.providers.receipts_base_url = String::new();
    settings
}

/// The sidecar's pluggable SMTP binding (bindings.smtp-mime), in-process,
/// with the sidecar told where its socket is. Start it before the sidecar:
/// daprd discovers pluggable components once, at start-up.
pub async fn email_binding(
    env: &TestEnv,
    dapr: &mut DaprdOptions,
) -> smtp_mime_binding::RunningBinding {
    let sockets = env.dir().join("sockets");
    let binding = smtp_mime_binding::RunningBinding::spawn(&sockets)
        .await
        .expect("SMTP binding");
    dapr.env.push((
        "DAPR_COMPONENTS_SOCKETS_FOLDER".into(),
        sockets.display().to_string(),
    ));
    binding
}

/// communication with its sidecar, database, Redis and token issuer.
pub struct TestApp {
    pub app: Option<RunningApp>,
    pub daprd: Daprd,
    /// The sidecar's pluggable SMTP binding (bindings.smtp-mime), in-process;
    /// declared after `daprd` so that the sidecar stops first.
    pub _email_binding: smtp_mime_binding::RunningBinding,
    pub db: TestDatabase,
    pub env: TestEnv,
    pub issuer: TestIssuer,
    pub settings: Settings,
    /// Sends a token with `communication:read` and `communication:write`.
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(providers: &Providers) -> Self {
        Self::spawn_with(providers, |_| {}).await
    }

    pub async fn spawn_with(providers: &Providers, adjust: impl FnOnce(&mut Settings)) -> Self {
        let env = TestEnv::start().await.expect("test env");
        Self::spawn_in(env, providers, adjust).await
    }

    /// In a test environment started by the caller (who may have started
    /// providers in it).
    pub async fn spawn_in(
        env: TestEnv,
        providers: &Providers,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = settings();
        let db = TestDatabase::create_in_place(&mut settings.database)
            .await
            .expect("test database");
        settings.server.port = 0;
        let issuer = TestIssuer::start().await.expect("token issuer");
        issuer.apply_to(&mut settings.auth);
        settings.sending.sweep_interval_ms = 500;
        adjust(&mut settings);
        let mut dapr = DaprdOptions::new("communication").expect("sidecar ports");
        dapr.env = providers.sidecar_env();
        let email_binding = email_binding(&env, &mut dapr).await;
        let (app, daprd) = start_with_options(&env, dapr, |dapr| {
            dapr.apply_to(&mut settings.dapr);
            let settings = settings.clone();
            async move { Ok(communication::startup::build(settings).await?) }
        })
        .await
        .expect("communication with its sidecar");
        // restart() builds on the same port.
        settings.server.port = app.addr.port();
        app.wait_ready(Duration::from_secs(30))
            .await
            .expect("communication ready");
        let token = issuer.token(
            "communication",
            &["communication:read", "communication:write"],
        );
        let http = authorized_client(&token).expect("client");
        Self {
            app: Some(app),
            daprd,
            _email_binding: email_binding,
            db,
            env,
            issuer,
            settings,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.app.as_ref().expect("app running").url(path)
    }

    /// Stops the service gracefully (as on SIGTERM) and starts a new
    /// instance on the same port with the same database and sidecar.
    pub async fn restart(&mut self) {
        self.restart_after(Duration::ZERO).await;
    }

    /// [`Self::restart`], the service staying down for `down` in between
    /// (its sidecar keeps running and trying to deliver).
    pub async fn restart_after(&mut self, down: Duration) {
        if let Some(app) = self.app.take() {
            app.stop().await.expect("graceful stop");
        }
        tokio::time::sleep(down).await;
        let server = communication::startup::build(self.settings.clone())
            .await
            .expect("communication builds again");
        let app = RunningApp::start(server).expect("app runs again");
        app.wait_ready(Duration::from_secs(30))
            .await
            .expect("ready again");
        self.app = Some(app);
    }

    pub async fn notify(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/notifications"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Creates a notification under a fresh Idempotency-Key; its body.
    pub async fn create(&self, body: &Value) -> Value {
        self.notify(&new_id("key"), body)
            .await
            .json()
            .await
            .expect("notification body")
    }

    /// `GET /v1/notifications/{id}` (with its history).
    pub async fn notification(&self, id: &str) -> Value {
        self.get(&format!("/v1/notifications/{id}"))
            .await
            .json()
            .await
            .expect("notification body")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request")
    }

    pub async fn put(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_recipient(&self, id: &str, contacts: Value) {
        let res = self.put(&format!("/v1/recipients/{id}"), &contacts).await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
    }

    /// Replaces recipient `id`'s preferences (`[{category, channel, opted_out}]`).
    pub async fn put_preferences(&self, id: &str, preferences: Value) {
        let res = self
            .put(
                &format!("/v1/recipients/{id}/preferences"),
                &json!({ "preferences": preferences }),
            )
            .await;
        assert_eq!(res.status(), 200);
    }

    /// Recipient `id` opts out of `channel` for each of `categories`.
    pub async fn opt_out(&self, id: &str, channel: &str, categories: &[&str]) {
        let preferences: Vec<Value> = categories
            .iter()
            .map(|category| json!({"category": category, "channel": channel, "opted_out": true}))
            .collect();
        self.put_preferences(id, json!(preferences)).await;
    }

    /// Waits until notification `id` has `status`; returns its body.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let path = format!("/v1/notifications/{id}");
        eventually(
            Duration::from_secs(45),
            &format!("notification {id} to be {status}"),
            || async {
                let body: Value = self.get(&path).await.json().await.ok()?;
                (body["status"] == status).then_some(body)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.daprd.log_tail(30)))
    }

    /// Publishes a CloudEvent with the given id to `topic` of `pubsub`.
    pub async fn publish_event(&self, topic: &str, id: &str, event_type: &str, data: Value) {
        let source = topic.split('.').next().unwrap_or(topic);
        let event = json!({
            "specversion": "1.0",
            "id": id,
            "source": source,
            "type": event_type,
            "datacontenttype": "application/json",
            "data": data,
        });
        self.daprd
            .publish_cloudevent(PUBSUB, topic, &event)
            .await
            .expect("publish");
    }

    /// Publishes a payments.payment.succeeded event (see `payment_succeeded`).
    pub async fn publish_payment_succeeded(
        &self,
        event_id: &str,
        payment_id: &str,
        customer: &str,
        amount: i64,
    ) {
        self.publish_event(
            "payments",
            event_id,
            "payments.payment.succeeded",
            payment_succeeded(payment_id, customer, amount),
        )
        .await;
    }

    /// Waits until the sidecar has handed `count` deliveries on `topic` to
    /// the app successfully (duplicates included).
    pub async fn wait_delivered(&self, topic: &str, count: f64) {
        self.daprd
            .wait_for_metric(
                "dapr_component_pubsub_ingress_count",
                &[("topic", topic), ("process_status", "success")],
                count,
                Duration::from_secs(30),
            )
            .await
            .expect("deliveries handled");
    }

    /// Notifications in the database: (id, recipient, status).
    pub async fn notifications(&self) -> Vec<(String, String, String)> {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query(
            "SELECT id::text AS id, recipient_id, status FROM notifications ORDER BY created_at",
        )
        .fetch_all(&mut conn)
        .await
        .expect("query")
        .iter()
        .map(|r| (r.get("id"), r.get("recipient_id"), r.get("status")))
        .collect()
    }

    /// Waits until at least `n` notifications exist; returns them all.
    pub async fn wait_notifications(&self, n: usize) -> Vec<(String, String, String)> {
        eventually(Duration::from_secs(30), "notifications", || async {
            let all = self.notifications().await;
            (all.len() >= n).then_some(all)
        })
        .await
        .expect("notifications")
    }

    /// Messages on a Redis stream (a topic), oldest first, as JSON.
    pub async fn stream(&self, topic: &str) -> Vec<Value> {
        let out = self
            .env
            .redis
            .command(&["XRANGE", topic, "-", "+"])
            .await
            .unwrap_or_default();
        out.lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
            // Each stream entry also holds the publish metadata as JSON.
            .filter(|v| v.get("specversion").is_some())
            .collect()
    }

    pub async fn wait_stream(&self, topic: &str, n: usize) -> Vec<Value> {
        eventually(
            Duration::from_secs(45),
            &format!("{n} messages on {topic}"),
            || async {
                let messages = self.stream(topic).await;
                (messages.len() >= n).then_some(messages)
            },
        )
        .await
        .expect("stream messages")
    }
}

/// The notification sandbox and communication pointed at it.
pub async fn with_notify(
    adjust: impl FnOnce(&mut Settings),
) -> (platform_test_support::NotifySandbox, TestApp) {
    let notify = platform_test_support::NotifySandbox::start()
        .await
        .expect("notify sandbox");
    let mut providers = Providers::unreachable();
    providers.notify_url = notify.url().to_owned();
    let app = TestApp::spawn_with(&providers, adjust).await;
    (notify, app)
}

/// An SMTP catcher and communication sending email to it.
pub async fn with_catcher(
    adjust: impl FnOnce(&mut Settings),
) -> (platform_test_support::SmtpCatcher, TestApp) {
    let env = TestEnv::start().await.expect("test env");
    let catcher = platform_test_support::SmtpCatcher::start(env.dir())
        .await
        .expect("SMTP catcher");
    let mut providers = Providers::unreachable();
    providers.smtp_port = catcher.smtp_port();
    let app = TestApp::spawn_in(env, &providers, adjust).await;
    (catcher, app)
}

/// A security alert for a new recipient over `channel` only, to the
/// `contact` (field, value), e.g. `("phone", "+49...")`.
pub fn alert(channel: &str, contact: (&str, &str)) -> Value {
    let mut recipient = json!({"id": new_id("r")});
    recipient[contact.0] = json!(contact.1);
    json!({
        "recipient": recipient,
        "template": "security_alert",
        "category": "security",
        "data": {"event": "new sign-in"},
        "channels": [channel],
    })
}

/// A payments.payment.succeeded event's data.
pub fn payment_succeeded(payment_id: &str, customer: &str, amount: i64) -> Value {
    json!({
        "payment_id": payment_id,
        "amount": amount,
        "currency": "EUR",
        "customer_reference": customer,
        "occurred_at": "2026-11-26T10:00:00Z",
    })
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
