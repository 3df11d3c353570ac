use std::path::Path;
use std::time::Duration;

use bookkeeping::settings::Settings;
use platform_settings::Source;
use platform_test_support::{Daprd, DaprdOptions, RunningApp, TestDatabase, TestEnv};
use serde_json::{Value, json};
use sqlx::Row;

pub const PUBSUB: &str = "pubsub";
pub const TOPIC: &str = "payments";
pub const DEAD_LETTER_TOPIC: &str = "payments.deadletter";

/// bookkeeping with its sidecar, database and Redis.
pub struct TestApp {
    pub app: RunningApp,
    pub daprd: Daprd,
    pub db: TestDatabase,
    pub env: TestEnv,
    pub http: reqwest::Client,
}

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    Settings::load(&source).expect("bookkeeping settings")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let env = TestEnv::start().await.expect("test env");
        let mut settings = settings();
        let db = TestDatabase::create(&settings.database)
            .await
            .expect("test database");
        let dapr = DaprdOptions::new("bookkeeping").expect("ports");
        settings.server.port = 0;
        settings.dapr.http_port = dapr.http_port;
        settings.dapr.grpc_port = dapr.grpc_port;
        settings.database = db.settings().clone();
        adjust(&mut settings);

        let server = bookkeeping::startup::build(settings)
            .await
            .expect("build bookkeeping");
        let app = RunningApp::start(server).expect("start bookkeeping");
        let daprd = Daprd::start(&env, dapr, app.addr.port())
            .await
            .expect("start daprd");
        app.wait_ready(Duration::from_secs(20))
            .await
            .expect("bookkeeping ready");
        Self {
            app,
            daprd,
            db,
            env,
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Publishes a `payments.payment.created` CloudEvent with the given id.
    pub async fn publish_payment_created(&self, id: &str, data: Value) {
        let event = json!({
            "specversion": "1.0",
            "id": id,
            "source": "payments",
            "type": "payments.payment.created",
            "datacontenttype": "application/json",
            "subject": data["payment_id"],
            "data": data,
        });
        self.daprd
            .publish_cloudevent(PUBSUB, TOPIC, &event)
            .await
            .expect("publish");
    }

    /// Deliveries bookkeeping's sidecar has counted with this outcome.
    pub async fn deliveries(&self, process_status: &str) -> f64 {
        self.daprd
            .metric(
                "dapr_component_pubsub_ingress_count",
                &[("topic", TOPIC), ("process_status", process_status)],
            )
            .await
            .expect("sidecar metrics")
    }

    pub async fn wait_deliveries(&self, process_status: &str, at_least: f64) {
        self.wait_deliveries_within(process_status, at_least, Duration::from_secs(30))
            .await;
    }

    pub async fn wait_deliveries_within(
        &self,
        process_status: &str,
        at_least: f64,
        timeout: Duration,
    ) {
        self.daprd
            .wait_for_metric(
                "dapr_component_pubsub_ingress_count",
                &[("topic", TOPIC), ("process_status", process_status)],
                at_least,
                timeout,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", self.daprd.log_tail(30)));
    }

    /// Waits until the dead-letter topic holds at least `n` messages.
    pub async fn wait_dead_lettered(&self, n: u64) {
        platform_test_support::eventually(
            Duration::from_secs(20),
            "the dead-letter topic to receive the event",
            || async {
                self.env
                    .redis
                    .stream_len(DEAD_LETTER_TOPIC)
                    .await
                    .ok()
                    .filter(|len| *len >= n)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", self.daprd.log_tail(30)));
    }

    /// Rows in the inbox for `(source, id)`.
    pub async fn inbox_count(&self, source: &str, id: &str) -> i64 {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query("SELECT count(*) AS n FROM inbox WHERE source = $1 AND event_id = $2")
            .bind(source)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .expect("count")
            .get("n")
    }
}

pub fn payment_created(payment_id: &str) -> Value {
    json!({
        "payment_id": payment_id,
        "amount": 1250,
        "currency": "EUR",
        "customer_reference": "cus_42",
        "occurred_at": "2026-11-26T10:00:00Z",
    })
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
