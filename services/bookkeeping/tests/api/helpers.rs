use std::path::Path;
use std::time::Duration;

use bookkeeping::settings::Settings;
use platform_settings::Source;
pub use platform_test_support::authorized_client;
use platform_test_support::{
    Daprd, RunningApp, TestDatabase, TestEnv, TestIssuer, start_with_sidecar,
};
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
    pub issuer: TestIssuer,
    /// Sends a token with `bookkeeping:read` and `bookkeeping:write`.
    pub http: reqwest::Client,
}

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    source.load::<Settings>().expect("bookkeeping settings")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let env = TestEnv::start().await.expect("test env");
        let mut settings = settings();
        let db = TestDatabase::create_in_place(&mut settings.database)
            .await
            .expect("test database");
        settings.server.port = 0;
        let issuer = TestIssuer::start().await.expect("token issuer");
        issuer.apply_to(&mut settings.auth);
        adjust(&mut settings);
        let (app, daprd) = start_with_sidecar(&env, "bookkeeping", |dapr| {
            dapr.apply_to(&mut settings.dapr);
            async move { Ok(bookkeeping::startup::build(settings).await?) }
        })
        .await
        .expect("bookkeeping with its sidecar");
        let token = issuer.token("bookkeeping", &["bookkeeping:read", "bookkeeping:write"]);
        let http = authorized_client(&token).expect("client");
        Self {
            app,
            daprd,
            db,
            env,
            issuer,
            http,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.app.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Publishes a payments CloudEvent of `event_type` with the given id.
    pub async fn publish_payment_event(&self, id: &str, event_type: &str, data: Value) {
        let event = json!({
            "specversion": "1.0",
            "id": id,
            "source": "payments",
            "type": event_type,
            "datacontenttype": "application/json",
            "subject": data["payment_id"],
            "data": data,
        });
        self.daprd
            .publish_cloudevent(PUBSUB, TOPIC, &event)
            .await
            .expect("publish");
    }

    /// Events bookkeeping's sidecar has counted with this outcome
    /// (`success`, `retry`, `drop`), whether delivered singly or in bulk.
    pub async fn deliveries(&self, process_status: &str) -> f64 {
        deliveries_of(&self.daprd, process_status)
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
        let waited = platform_test_support::eventually(
            timeout,
            &format!("{at_least} deliveries with status {process_status}"),
            || async {
                deliveries_of(&self.daprd, process_status)
                    .await
                    .ok()
                    .filter(|n| *n >= at_least)
            },
        )
        .await;
        if let Err(e) = waited {
            let metrics = self.daprd.metrics_text().await.unwrap_or_default();
            let ingress: Vec<&str> = metrics
                .lines()
                .filter(|l| l.contains("ingress") && l.contains("count"))
                .collect();
            panic!(
                "{e}\nsidecar ingress counters: {ingress:#?}\n{}",
                self.daprd.log_tail(30)
            );
        }
    }

    /// Messages on the dead-letter topic, oldest first, as JSON.
    pub async fn dead_letters(&self) -> Vec<Value> {
        let reply = self
            .env
            .redis
            .command(&["XRANGE", DEAD_LETTER_TOPIC, "-", "+"])
            .await
            .expect("redis");
        reply
            .lines()
            .filter(|line| line.starts_with('{') && line.contains("specversion"))
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
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

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.app.url(path))
            // As the sidecar does, for the Dapr-facing routes.
            .header("dapr-api-token", &self.daprd.options.app_token)
            .json(body)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self.get(path).await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Creates an account and returns its id. `min_balance`: `Some(0)` no
    /// overdraft, `None` overdraft allowed.
    pub async fn account(&self, kind: &str, currency: &str, min_balance: Option<i64>) -> String {
        let id = new_id();
        let body = json!({
            "id": id, "code": format!("{kind}:{}", &id[..8]), "name": format!("{kind} account"),
            "kind": kind, "currency": currency, "min_balance": min_balance,
        });
        let (status, res) = self.post_json("/v1/accounts", &body).await;
        assert_eq!(status, 201, "{res}");
        id
    }

    /// The normal-direction balance of an account now.
    pub async fn balance(&self, account: &str) -> i64 {
        let (status, body) = self
            .get_json(&format!("/v1/accounts/{account}/balance"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["normal_balance"].as_i64().expect("normal_balance")
    }

    /// Runs sql/audit.sql; every row is a violated invariant.
    pub async fn audit(&self) -> Vec<String> {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query(include_str!("../../sql/audit.sql"))
            .fetch_all(&mut conn)
            .await
            .expect("audit")
            .iter()
            .map(|r| {
                format!(
                    "{}: {} {}",
                    r.get::<String, _>(0),
                    r.get::<String, _>(1),
                    r.get::<String, _>(2)
                )
            })
            .collect()
    }

    pub async fn assert_books_consistent(&self) {
        let violations = self.audit().await;
        assert!(violations.is_empty(), "ledger audit: {violations:#?}");
    }

    /// Normal-direction balance of an account found by code (0 if absent).
    pub async fn balance_by_code(&self, code: &str) -> i64 {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query_scalar::<_, i64>(
            "SELECT normal_sign(kind) * balance FROM accounts WHERE code = $1",
        )
        .bind(code)
        .fetch_optional(&mut conn)
        .await
        .expect("balance")
        .unwrap_or(0)
    }

    pub async fn entry_count(&self) -> i64 {
        let mut conn = self.db.connect().await.expect("db");
        sqlx::query_scalar("SELECT count(*) FROM entries")
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }

    /// A client with a token that has `bookkeeping:admin` (the parking
    /// lot's operator API).
    pub fn admin(&self) -> reqwest::Client {
        let token = self.issuer.token("bookkeeping", &["bookkeeping:admin"]);
        authorized_client(&token).expect("client")
    }

    /// This test's database refuses the service ([`TestDatabase::outage`]).
    pub async fn database_outage(&self) {
        self.db.outage().await.expect("database outage");
    }

    pub async fn database_back(&self) {
        self.db.back().await.expect("database back");
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

/// Sidecar counters for single deliveries (lowercase status) and bulk
/// deliveries (uppercase status) together.
async fn deliveries_of(daprd: &Daprd, process_status: &str) -> anyhow::Result<f64> {
    let single = daprd
        .metric(
            "dapr_component_pubsub_ingress_count",
            &[("topic", TOPIC), ("process_status", process_status)],
        )
        .await?;
    let bulk = daprd
        .metric(
            "dapr_component_pubsub_ingress_bulk_event_count",
            &[
                ("topic", TOPIC),
                ("process_status", &process_status.to_uppercase()),
            ],
        )
        .await?;
    Ok(single + bulk)
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

/// A two-posting entry moving `amount` from `from` (credit) to `to` (debit).
pub fn transfer(from: &str, to: &str, amount: i64, currency: &str) -> Value {
    json!({
        "id": new_id(),
        "description": "transfer",
        "effective_at": "2026-11-26T10:00:00Z",
        "postings": [
            { "account_id": to, "amount": amount, "currency": currency },
            { "account_id": from, "amount": -amount, "currency": currency },
        ],
    })
}

pub fn payment_succeeded(payment_id: &str, amount: i64) -> Value {
    json!({
        "payment_id": payment_id,
        "amount": amount,
        "currency": "EUR",
        "customer_reference": "cus_42",
        "occurred_at": "2026-11-26T10:00:00Z",
    })
}

pub const SUCCEEDED: &str = "payments.payment.succeeded";
pub const REFUNDED: &str = "payments.refund.succeeded";

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The status of POSTing `body` to `url` as `client`.
pub async fn post_status(client: &reqwest::Client, url: &str, body: &serde_json::Value) -> u16 {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}
