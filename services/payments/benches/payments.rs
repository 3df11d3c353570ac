//! `make bench-payments`: create+confirm through payments and its sidecar,
//! against the PSP sandbox at zero latency, and in the same run the floor:
//! the same sidecar calls issued directly by the load generator, without
//! payments in between. Prints throughput, p50/p99, payments/floor and the
//! latency at half of payments' maximum throughput. Everything runs on this
//! machine (release build): payments in-process, its daprd, PostgreSQL
//! (payments-state, payments-idempotency), Redis (pub/sub), the sandbox and the load
//! generator share the cores.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark: prints its figures, failures end the run loudly"
)]

use platform_test_support::bench::{machine, percentile};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use payments::settings::Settings;
use platform_dapr::{InvokeRequest, Sidecar, StateOperation, WriteMode};
use platform_settings::Source;
use platform_test_support::{
    DaprdOptions, PspSandbox, TestDatabase, TestEnv, TestIssuer, start_with_options,
};
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

const CLIENTS: usize = 16;
const PHASE: Duration = Duration::from_secs(8);
const WARM_UP: Duration = Duration::from_secs(2);
const CARD: &str = "4242424242424242";

#[derive(Debug, Clone)]
struct Target {
    http: reqwest::Client,
    app: String,
    sidecar: Sidecar,
}

impl Target {
    /// One create+confirm through payments, with Idempotency-Keys as a real
    /// client sends them.
    async fn through_payments(&self) {
        let created: Value = self
            .http
            .post(format!("{}/v1/payments", self.app))
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({ "amount": 1250, "currency": "EUR", "customer_reference": "cus_bench" }))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("create body");
        let id = created["id"].as_str().expect("payment id");
        let res = self
            .http
            .post(format!("{}/v1/payments/{id}/confirm", self.app))
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .json(&json!({ "card_number": CARD }))
            .send()
            .await
            .expect("confirm");
        assert_eq!(res.status(), 200, "confirm answered {}", res.status());
    }

    async fn kv_put(&self, key: &str, first_write: bool) {
        let mode = if first_write {
            WriteMode::Insert
        } else {
            WriteMode::Overwrite
        };
        self.sidecar
            .save_state(
                "payments-idempotency",
                key,
                br#"{"state":"x"}"#.to_vec(),
                mode,
                Some(Duration::from_secs(90_000)),
            )
            .await
            .expect("kv put");
    }

    /// The transaction payments issues for a change (ADR 0031): the state
    /// (JSON, with ETag; first-write when new), its event as an outbox
    /// record and, when given, the reconciliation intent written or deleted.
    async fn save(&self, key: &str, etag: Option<String>, event_type: &str, intent: Option<bool>) {
        let state = json!({ "id": key, "status": "x", "amount": 1250, "created_at_us": 1 });
        let state = serde_json::to_vec(&state).expect("state");
        let event_id = Uuid::now_v7();
        let record = json!({ "record": "outbox", "event_id": event_id, "event_type": event_type,
            "subject": key, "data": { "payment_id": key, "amount": 1250 },
            "queued_at_us": "0000000000000001" });
        let mut operations = vec![
            match etag {
                Some(etag) => StateOperation::upsert(key, state, Some(etag)),
                None => StateOperation::insert(key, state),
            },
            StateOperation::upsert(
                format!("outbox:{event_id}"),
                serde_json::to_vec(&record).expect("record"),
                None,
            ),
        ];
        match intent {
            Some(true) => operations.push(StateOperation::upsert(
                format!("reconcile:{key}"),
                serde_json::to_vec(&json!({ "record": "reconcile", "payment_id": key,
                    "due_at_us": "0000000000000001", "tries": 0 }))
                .expect("intent"),
                None,
            )),
            Some(false) => {
                operations.push(StateOperation::delete(format!("reconcile:{key}"), None))
            }
            None => {}
        }
        self.sidecar
            .execute_transaction("payments-state", &operations)
            .await
            .expect("state transaction");
    }

    async fn read(&self, key: &str) -> Option<String> {
        self.sidecar
            .get_state("payments-state", key)
            .await
            .expect("read")
            .expect("the saved state")
            .etag
    }

    /// The floor: the sidecar calls payments makes for one create+confirm
    /// (claim and answer records of both Idempotency-Keys, the transaction
    /// of the new payment, the read before the confirmation, the transaction
    /// of its intent, the provider invocation, the read and the transaction
    /// of the outcome), issued directly through the same client. Not
    /// counted on either side: the relay's publishing, which runs in the
    /// background in payments.
    async fn floor(&self) {
        let key = format!("bench:{}", Uuid::now_v7());
        let claim = format!("idem:{}", Uuid::new_v4());
        self.kv_put(&claim, true).await;
        self.save(&key, None, "bench.created", None).await;
        self.kv_put(&format!("{claim}:done"), false).await;
        let claim = format!("idem:{}", Uuid::new_v4());
        self.kv_put(&claim, true).await;
        let etag = self.read(&key).await;
        self.save(&key, etag, "bench.updated", Some(true)).await;
        let reference = format!("{key}.a1");
        let body = json!({ "amount": 1250, "currency": "EUR", "card_number": CARD,
            "reference": reference, "capture": true });
        let res = self
            .sidecar
            .invoke(
                "psp-bench",
                InvokeRequest::new(reqwest::Method::POST, "/v1/authorizations")
                    .header(
                        HeaderName::from_static("idempotency-key"),
                        HeaderValue::from_str(&reference).expect("key"),
                    )
                    .json(serde_json::to_vec(&body).expect("body")),
            )
            .await
            .expect("invoke");
        assert_eq!(res.status, 201, "provider answered {}", res.status);
        let etag = self.read(&key).await;
        self.save(&key, etag, "bench.succeeded", Some(false)).await;
        self.kv_put(&format!("{claim}:done"), false).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Payments,
    Floor,
}

async fn run_once(target: &Target, path: Route) {
    match path {
        Route::Payments => target.through_payments().await,
        Route::Floor => target.floor().await,
    }
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    n: usize,
}

/// `CLIENTS` clients back to back for `PHASE`: the maximum throughput.
async fn closed_loop(target: &Target, path: Route) -> Figures {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let target = target.clone();
        let latencies = Arc::clone(&latencies);
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while start.elapsed() < PHASE {
                let t = Instant::now();
                run_once(&target, path).await;
                mine.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies.lock().await.extend(mine);
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
    let elapsed = start.elapsed().as_secs_f64();
    figures(&latencies, elapsed).await
}

/// A fixed arrival rate for `PHASE` (latency measured from the scheduled
/// start, so queueing counts).
async fn open_loop(target: &Target, path: Route, rate: f64) -> Figures {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    while start.elapsed() < PHASE {
        ticker.tick().await;
        let scheduled = Instant::now();
        let target = target.clone();
        let latencies = Arc::clone(&latencies);
        tasks.push(tokio::spawn(async move {
            run_once(&target, path).await;
            let ms = scheduled.elapsed().as_secs_f64() * 1000.0;
            latencies.lock().await.push(ms);
        }));
    }
    for t in tasks {
        t.await.expect("request");
    }
    let elapsed = start.elapsed().as_secs_f64();
    figures(&latencies, elapsed).await
}

async fn figures(latencies: &Mutex<Vec<f64>>, elapsed: f64) -> Figures {
    let mut all = latencies.lock().await.clone();
    all.sort_by(f64::total_cmp);
    Figures {
        rate: all.len() as f64 / elapsed,
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        n: all.len(),
    }
}

fn resources(psp: &PspSandbox) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    psp.write_http_endpoint(dir.path(), "psp-bench")
        .expect("endpoint");
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dapr-config/resiliency/payments.yaml"),
    )
    .expect("resiliency")
    .replace("name: payments-provider", "name: payments-provider-bench")
    .replace("\n      psp:\n", "\n      psp-bench:\n");
    std::fs::write(dir.path().join("resiliency-bench.yaml"), policy).expect("resiliency");
    dir
}

#[tokio::main]
async fn main() {
    let env = TestEnv::start().await.expect("test env");
    let psp = PspSandbox::start(None).await.expect("sandbox");
    psp.configure(json!({ "latency_ms": 0 }))
        .await
        .expect("zero latency");
    let dir = resources(&psp);

    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    };
    let mut settings = source.load::<Settings>().expect("settings");
    settings.server.port = 0;
    settings.telemetry.log_filter = "warn".into();
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.apply_to(&mut settings.auth);
    settings.provider.endpoint = "psp-bench".into();
    let mut dapr = DaprdOptions::new("payments").expect("ports");
    dapr.extra_resources.push(dir.path().to_owned());
    // payments-state (PostgreSQL) in a database of this run.
    let db = TestDatabase::create_for("payments")
        .await
        .expect("a payments database (make infra)");
    dapr.env.push((
        "PAYMENTS_STATE_DATABASE".into(),
        db.settings().database_name.clone(),
    ));
    dapr.apply_to(&mut settings.dapr);
    let dapr_settings = settings.dapr.clone();
    let (app, _daprd) = start_with_options(&env, dapr, |_| async move {
        Ok(payments::startup::build(settings).await?)
    })
    .await
    .expect("payments with its sidecar");
    app.wait_ready(Duration::from_secs(30))
        .await
        .expect("ready");

    let token = issuer.token("payments", &["payments:read", "payments:write"]);
    let target = Target {
        http: reqwest::Client::builder()
            .default_headers(
                [(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {token}").parse().expect("header"),
                )]
                .into_iter()
                .collect(),
            )
            .pool_max_idle_per_host(256)
            .build()
            .expect("client"),
        app: app.url(""),
        sidecar: Sidecar::connect_lazy(&dapr_settings).expect("sidecar client"),
    };

    println!("payments benchmark on {}", machine());
    println!(
        "{CLIENTS} clients, {}s per phase, sandbox at 0 ms latency\n",
        PHASE.as_secs()
    );
    for path in [Route::Payments, Route::Floor] {
        let until = Instant::now() + WARM_UP;
        while Instant::now() < until {
            run_once(&target, path).await;
        }
    }
    let floor = closed_loop(&target, Route::Floor).await;
    let max = closed_loop(&target, Route::Payments).await;
    println!(
        "floor (same sidecar calls, no payments): {:>7.1} create+confirm/s  p50 {:>6.2} ms  p99 {:>6.2} ms  (n={})",
        floor.rate, floor.p50, floor.p99, floor.n
    );
    println!(
        "payments (through the API)            : {:>7.1} create+confirm/s  p50 {:>6.2} ms  p99 {:>6.2} ms  (n={})",
        max.rate, max.p50, max.p99, max.n
    );
    println!(
        "payments/floor throughput             : {:.2}",
        max.rate / floor.rate
    );
    let half = max.rate / 2.0;
    let at_half = open_loop(&target, Route::Payments, half).await;
    println!(
        "payments at half of max ({half:.0}/s, open loop): {:>7.1}/s  p50 {:>6.2} ms  p99 {:>6.2} ms  (n={})",
        at_half.rate, at_half.p50, at_half.p99, at_half.n
    );
    println!(
        "sandbox authorizations created: {}",
        psp.stats().await.expect("stats")["authorizations_created"]
    );
}
