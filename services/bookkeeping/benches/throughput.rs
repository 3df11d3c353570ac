//! `make bench-bookkeeping`: entries/s through the batch API and events/s
//! consumed end to end through Redis Streams and the real daprd, with
//! latency percentiles. Everything runs on this machine: the service
//! (in-process, release build), its sidecar, PostgreSQL and Redis.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark: prints its figures, failures end the run loudly"
)]

use platform_test_support::bench::{machine, percentile};
use std::path::Path;
use std::time::{Duration, Instant};

use bookkeeping::settings::Settings;
use platform_settings::Source;
use platform_test_support::{
    RunningApp, TestDatabase, TestEnv, TestIssuer, authorized_client, eventually,
    start_with_sidecar_unready,
};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const BATCH: usize = 500;
const BATCHES: usize = 100;
const CLIENTS: usize = 4;
const EVENTS: usize = 20_000;

async fn account(http: &reqwest::Client, app: &RunningApp, kind: &str, currency: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let body = json!({ "id": id, "code": format!("bench:{}", &id[..12]), "name": "bench", "kind": kind, "currency": currency, "min_balance": null });
    let res = http
        .post(app.url("/v1/accounts"))
        .json(&body)
        .send()
        .await
        .expect("account");
    assert_eq!(res.status(), 201);
    id
}

/// Posts BATCHES batches of BATCH two-posting entries with CLIENTS clients;
/// `pairs` gives the (debit, credit) accounts to cycle through.
async fn batch_api(
    http: &reqwest::Client,
    app: &RunningApp,
    pairs: &[(String, String)],
) -> (f64, Vec<f64>) {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(BATCHES);
    let mut next = 0;
    while next < BATCHES {
        let wave: Vec<_> = (next..(next + CLIENTS).min(BATCHES))
            .map(|b| {
                let entries: Vec<_> = (0..BATCH)
                    .map(|i| {
                        let (debit, credit) = &pairs[(b * BATCH + i) % pairs.len()];
                        json!({ "id": Uuid::new_v4(), "description": "bench", "effective_at": "2026-11-26T10:00:00Z",
                            "postings": [ { "account_id": debit, "amount": 100, "currency": "EUR" },
                                          { "account_id": credit, "amount": -100, "currency": "EUR" } ] })
                    })
                    .collect();
                let body = json!({ "entries": entries });
                let http = http.clone();
                let url = app.url("/v1/entries/batch");
                async move {
                    let t = Instant::now();
                    let res = http.post(url).json(&body).send().await.expect("batch");
                    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap_or_default());
                    t.elapsed().as_secs_f64() * 1000.0
                }
            })
            .collect();
        latencies.extend(futures::future::join_all(wave).await);
        next += CLIENTS;
    }
    let rate = (BATCHES * BATCH) as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    (rate, latencies)
}

fn payment_event(id: &str, occurred_at: &str) -> String {
    json!({
        "specversion": "1.0", "id": id, "source": "payments", "type": "payments.payment.succeeded",
        "datacontenttype": "application/json", "topic": "payments", "pubsubname": "pubsub",
        "data": { "payment_id": id, "amount": 1250, "currency": "EUR", "customer_reference": "bench", "occurred_at": occurred_at },
    })
    .to_string()
}

async fn booked(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM entries WHERE metadata ? 'event_id'")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

/// Latency of booked events (ms): posted_at − occurred_at (= publish time).
async fn event_latencies(pool: &PgPool, since: &str) -> Vec<f64> {
    let mut v: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM posted_at - effective_at) * 1000)::float8 FROM entries
          WHERE metadata ->> 'customer_reference' = 'bench' AND metadata ->> 'event_id' LIKE $1 || '%'",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    v.sort_by(f64::total_cmp);
    v
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env = TestEnv::start().await.expect("env");
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "bench".into(),
    };
    let mut settings = source.load::<Settings>().expect("settings");
    let db = TestDatabase::create_in_place(&mut settings.database)
        .await
        .expect("database");
    settings.server.port = 0;
    settings.database.max_connections = 20;
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.apply_to(&mut settings.auth);
    let (app, daprd) = start_with_sidecar_unready(&env, "bookkeeping", |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(bookkeeping::startup::build(settings).await?) }
    })
    .await
    .expect("bookkeeping with its sidecar");
    app.wait_ready(Duration::from_secs(30))
        .await
        .expect("ready");
    let pool = db.pool().await.expect("pool");
    let token = issuer.token("bookkeeping", &["bookkeeping:read", "bookkeeping:write"]);
    let http = authorized_client(&token).expect("client");

    println!("bookkeeping benchmark — {}", machine());
    println!(
        "service, daprd {}, PostgreSQL and Redis all on this machine\n",
        daprd.runtime_version().await.unwrap_or_default()
    );

    // 1. Batch API, one hot pair of accounts (every entry locks the same two rows).
    let hot = vec![(
        account(&http, &app, "asset", "EUR").await,
        account(&http, &app, "revenue", "EUR").await,
    )];
    let (rate, lat) = batch_api(&http, &app, &hot).await;
    println!(
        "batch API, 2 hot accounts:     {rate:>8.0} entries/s   ({BATCHES} batches of {BATCH}, {CLIENTS} clients; per batch p50 {:.1} ms, p99 {:.1} ms)",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );

    // 2. Batch API, 200 accounts in 100 pairs.
    let mut spread = Vec::new();
    for _ in 0..100 {
        spread.push((
            account(&http, &app, "asset", "EUR").await,
            account(&http, &app, "revenue", "EUR").await,
        ));
    }
    let (rate, lat) = batch_api(&http, &app, &spread).await;
    println!(
        "batch API, 200 accounts:       {rate:>8.0} entries/s   ({BATCHES} batches of {BATCH}, {CLIENTS} clients; per batch p50 {:.1} ms, p99 {:.1} ms)",
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );

    // 3. Events end to end: EVENTS payment events appended to the stream as
    // fast as Redis takes them; time until every one is booked.
    let base = booked(&pool).await;
    let run = format!("burst-{}-", Uuid::new_v4().simple());
    let occurred = now_rfc3339();
    let events: Vec<String> = (0..EVENTS)
        .map(|i| payment_event(&format!("{run}{i}"), &occurred))
        .collect();
    let started = Instant::now();
    env.redis
        .append_events("payments", events)
        .await
        .expect("xadd");
    eventually(
        Duration::from_secs(600),
        "every event to be booked",
        || async { (booked(&pool).await - base >= EVENTS as i64).then_some(()) },
    )
    .await
    .expect("events booked");
    let burst_rate = EVENTS as f64 / started.elapsed().as_secs_f64();
    println!(
        "events end to end (burst):     {burst_rate:>8.0} events/s    ({EVENTS} events queued at once, booked through daprd → HTTP → PostgreSQL)"
    );

    // 4. Latency at half that rate, for 10 s.
    let rate = (burst_rate / 2.0).max(1.0);
    let run = format!("steady-{}-", Uuid::new_v4().simple());
    let total = (rate * 10.0) as usize;
    let base = booked(&pool).await;
    let tick = Duration::from_millis(20);
    let per_tick = ((rate * tick.as_secs_f64()).ceil() as usize).max(1);
    let started = Instant::now();
    let mut sent = 0;
    let mut ticker = tokio::time::interval(tick);
    while sent < total {
        ticker.tick().await;
        let n = per_tick.min(total - sent);
        let occurred = now_rfc3339();
        let events = (sent..sent + n).map(|i| payment_event(&format!("{run}{i}"), &occurred));
        env.redis
            .append_events("payments", events)
            .await
            .expect("xadd");
        sent += n;
    }
    eventually(
        Duration::from_secs(300),
        "the steady events to be booked",
        || async { (booked(&pool).await - base >= total as i64).then_some(()) },
    )
    .await
    .expect("events booked");
    let lat = event_latencies(&pool, &run).await;
    println!(
        "events end to end (steady):    {:>8.0} events/s    offered for {:.0} s; publish→booked p50 {:.1} ms, p99 {:.1} ms",
        total as f64 / started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );
    drop(daprd);
}
