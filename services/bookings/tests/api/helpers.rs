//! `TestApp`: bookings in-process with its own database, its real daprd
//! (pub/sub and the cache store on the test's Redis) and a real Dapr
//! scheduler (the Jobs API behind the hold-time deadlines), one method per
//! endpoint.

use std::path::Path;
use std::time::Duration;

use bookings::settings::Settings;
use platform_settings::Source;
use platform_test_support::{
    Daprd, DaprdOptions, RunningApp, Scheduler, TestDatabase, TestEnv, TestIssuer,
    authorized_client, eventually, start_with_options,
};
use serde_json::{Value, json};
use sqlx::{PgPool, Row};

pub const ALL_SCOPES: [&str; 3] = ["bookings:admin", "bookings:read", "bookings:write"];

pub fn settings() -> Settings {
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    source.load::<Settings>().expect("bookings settings")
}

/// What a test keeps across a "crash" of bookings: the environment, the
/// scheduler, the database, the token issuer.
pub struct World {
    pub env: TestEnv,
    pub scheduler: Scheduler,
    pub db: TestDatabase,
    pub issuer: TestIssuer,
}

impl World {
    pub async fn start() -> Self {
        let env = TestEnv::start().await.expect("test env");
        let scheduler = Scheduler::start(env.dir()).await.expect("scheduler");
        let mut database = settings().database;
        let db = TestDatabase::create_in_place(&mut database)
            .await
            .expect("test database");
        let issuer = TestIssuer::start().await.expect("token issuer");
        Self {
            env,
            scheduler,
            db,
            issuer,
        }
    }
}

pub struct TestApp {
    pub app: RunningApp,
    pub daprd: Daprd,
    pub pool: PgPool,
    /// Sends a token with every bookings scope.
    pub http: reqwest::Client,
}

impl TestApp {
    /// bookings with its sidecar in `world`; `hold_secs` short so deadlines
    /// fire within a test.
    pub async fn spawn(world: &World, hold_secs: i64) -> Self {
        Self::spawn_with(world, hold_secs, |_| {}).await
    }

    pub async fn spawn_with(
        world: &World,
        hold_secs: i64,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = settings();
        settings.database = world.db.settings().clone();
        settings.server.port = 0;
        settings.bookings.hold_secs = hold_secs;
        settings.saga.worker_interval_ms = 300;
        world.issuer.apply_to(&mut settings.auth);
        adjust(&mut settings);
        let mut options = DaprdOptions::new("bookings").expect("ports");
        options.env.push((
            "DAPR_SCHEDULER_HOST_ADDRESS_DNS_A".into(),
            world.scheduler.address.clone(),
        ));
        let (app, daprd) = start_with_options(&world.env, options, |dapr| {
            dapr.apply_to(&mut settings.dapr);
            async move { Ok(bookings::startup::build(settings).await?) }
        })
        .await
        .expect("bookings with its sidecar");
        app.wait_ready(Duration::from_secs(60))
            .await
            .expect("ready");
        let http = authorized_client(&world.issuer.token("bookings", &ALL_SCOPES)).expect("client");
        let pool = world.db.pool().await.expect("pool");
        Self {
            app,
            daprd,
            pool,
            http,
        }
    }

    pub async fn create_offering(&self, capacity: i32) -> Value {
        let now = time::OffsetDateTime::now_utc();
        let body = offering_body(capacity, now);
        let res = self
            .http
            .post(self.app.url("/v1/offerings"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        res.json().await.expect("json")
    }

    pub async fn book(&self, offering_id: &str, key: &str) -> reqwest::Response {
        self.http
            .post(self.app.url("/v1/bookings"))
            .header("Idempotency-Key", key)
            .json(&json!({ "offering_id": offering_id, "participant": "member-1", "locale": "de" }))
            .send()
            .await
            .expect("request")
    }

    /// Books a place ([`Self::book`]); the id of the `reserved` booking.
    pub async fn reserve(&self, offering_id: &str, key: &str) -> String {
        let res = self.book(offering_id, key).await;
        assert_eq!(res.status(), 201);
        let booking: Value = res.json().await.expect("booking");
        assert_eq!(booking["state"], "reserved");
        booking["id"].as_str().expect("booking id").to_owned()
    }

    pub async fn booking(&self, id: &str) -> Value {
        let res = self
            .http
            .get(self.app.url(&format!("/v1/bookings/{id}")))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }

    /// Waits until the booking is in `state`.
    pub async fn wait_for_state(&self, id: &str, state: &str, within: Duration) -> Value {
        eventually(within, &format!("booking {id} to be {state}"), || async {
            let booking = self.booking(id).await;
            (booking["state"] == state).then_some(booking)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}\nsidecar:\n{}", self.daprd.log_tail(30)))
    }

    /// What `create_payment` records when payments answers: the payments
    /// service is not harnessed here, so the test gives the booking the id
    /// payments would have returned and marks that call done.
    pub async fn payment_created(&self, booking_id: &str) -> String {
        let payment_id = format!("pay_{}", uuid::Uuid::new_v4().simple());
        let id = uuid::Uuid::parse_str(booking_id).expect("uuid");
        sqlx::query("UPDATE bookings SET payment_id = $2 WHERE id = $1")
            .bind(id)
            .bind(&payment_id)
            .execute(&self.pool)
            .await
            .expect("payment id");
        sqlx::query(
            "UPDATE saga_commands SET done_at = now() WHERE booking_id = $1 AND command = 'create_payment'",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .expect("command done");
        payment_id
    }

    /// Publishes a payments event through the sidecar, as payments' outbox does.
    pub async fn publish_payment_event(&self, event_type: &str, data: Value) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let event = json!({
            "specversion": "1.0", "id": id, "source": "payments", "type": event_type,
            "subject": data["payment_id"], "datacontenttype": "application/json", "data": data,
        });
        self.daprd
            .publish_cloudevent("pubsub", "payments", &event)
            .await
            .expect("publish");
        id
    }

    /// The pending (or done) command of a booking: (amount, done, attempts).
    pub async fn command(
        &self,
        booking_id: &str,
        command: &str,
    ) -> Option<(Option<i64>, bool, i32)> {
        let id = uuid::Uuid::parse_str(booking_id).expect("uuid");
        sqlx::query(
            "SELECT amount, done_at IS NOT NULL AS done, attempts FROM saga_commands
              WHERE booking_id = $1 AND command = $2",
        )
        .bind(id)
        .bind(command)
        .fetch_optional(&self.pool)
        .await
        .expect("query")
        .map(|r| (r.get("amount"), r.get("done"), r.get("attempts")))
    }

    pub async fn taken(&self, offering_id: &str) -> i32 {
        let id = uuid::Uuid::parse_str(offering_id).expect("uuid");
        sqlx::query_scalar("SELECT taken FROM offerings WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("taken")
    }
}

pub fn payment_data(payment_id: &str, amount: i64) -> Value {
    json!({
        "payment_id": payment_id, "amount": amount, "currency": "EUR",
        "customer_reference": "member-1", "occurred_at": "2026-12-07T10:00:00Z",
    })
}

pub fn offering_body(capacity: i32, now: time::OffsetDateTime) -> Value {
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("rfc3339")
    };
    json!({
        "kind": "course",
        "title": "Swimming for beginners",
        "starts_at": fmt(now + time::Duration::days(30)),
        "price_amount": 12000,
        "currency": "EUR",
        "capacity": capacity,
        "booking_opens_at": fmt(now - time::Duration::days(1)),
        "booking_closes_at": fmt(now + time::Duration::days(29)),
        "refund_policy": [
            { "until": fmt(now + time::Duration::days(20)), "percent": 50 }
        ],
    })
}

/// A booking's history as `state:cause`, oldest first.
pub fn causes(booking: &Value) -> Vec<String> {
    booking["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["to"].as_str().unwrap_or_default(),
                t["cause"].as_str().unwrap_or_default()
            )
        })
        .collect()
}
