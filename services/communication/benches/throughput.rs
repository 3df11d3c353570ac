//! `make bench-communication`: notifications/s from a `payments.payment.succeeded`
//! event published to the `payments` topic until the email is accepted by
//! the SMTP catcher (the binding call returned: status `sent`), with latency
//! percentiles. Everything runs on this machine: the service (in-process,
//! release build), its daprd, the pluggable SMTP binding (in-process),
//! PostgreSQL, Redis and the SMTP catcher.
//! `BENCH_TRACE=1` prints the outbox, queued and in-flight counts twice a
//! second while waiting (where the backlog is).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark: prints its figures, failures end the run loudly"
)]

use platform_test_support::bench::{machine, percentile};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use communication::settings::Settings;
use futures::StreamExt;
use platform_settings::Source;
use platform_test_support::{
    Daprd, DaprdOptions, SmtpCatcher, TestDatabase, TestEnv, TestIssuer, start_with_options,
};
use serde_json::json;
use sqlx::{PgPool, Row};

const WARMUP: usize = 200;
const EVENTS: usize = 3_000;
/// The latency run: events at a steady rate below saturation.
const PACED_EVENTS: usize = 1_000;
const PACED_RATE: f64 = 200.0;
/// Publishes in flight at once.
const PUBLISHERS: usize = 32;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Where the load generator puts the events.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// Appended straight to the `payments` Redis stream, as payments' own
    /// sidecar would have done: the broker work of publishing is not on the
    /// service's sidecar (the main figure; bookkeeping's benchmark does the
    /// same).
    Broker(&'a platform_test_support::TestRedis),
    /// Published through the service's own sidecar (`/v1.0/publish`), so
    /// that sidecar also does the publishing.
    Sidecar(&'a Daprd),
}

fn payment_event(run: &str, i: usize) -> serde_json::Value {
    json!({
        "specversion": "1.0",
        "id": format!("{run}-{i}"),
        "source": "payments",
        "type": "payments.payment.succeeded",
        "datacontenttype": "application/json",
        "topic": "payments",
        "pubsubname": "pubsub",
        "data": {
            "payment_id": format!("pay_{i}"), "amount": 1999, "currency": "EUR",
            "customer_reference": format!("cust-{i}"), "occurred_at": "2026-11-26T10:00:00Z",
        },
    })
}

/// Publishes one payment event per customer `from..to`, as fast as
/// possible, or at `rate` events/s; returns the wall time each was
/// published at, by customer.
async fn publish(
    via: Via<'_>,
    run: &str,
    from: usize,
    to: usize,
    rate: Option<f64>,
) -> HashMap<String, f64> {
    if let (Via::Broker(redis), None) = (via, rate) {
        let events: Vec<String> = (from..to)
            .map(|i| payment_event(run, i).to_string())
            .collect();
        let at = now_secs();
        redis.append_events("payments", events).await.expect("xadd");
        return (from..to).map(|i| (format!("cust-{i}"), at)).collect();
    }
    let start = tokio::time::Instant::now();
    futures::stream::iter(from..to)
        .map(|i| async move {
            if let Some(rate) = rate {
                let due = start + Duration::from_secs_f64((i - from) as f64 / rate);
                tokio::time::sleep_until(due).await;
            }
            let event = payment_event(run, i);
            let at = now_secs();
            match via {
                Via::Broker(redis) => redis
                    .append_events("payments", [event.to_string()])
                    .await
                    .expect("xadd"),
                Via::Sidecar(daprd) => daprd
                    .publish_cloudevent("pubsub", "payments", &event)
                    .await
                    .expect("publish"),
            }
            (format!("cust-{i}"), at)
        })
        .buffer_unordered(PUBLISHERS)
        .collect()
        .await
}

/// Waits until `n` notifications are sent; returns `recipient → sent at`.
async fn wait_sent(pool: &PgPool, n: usize) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let sent: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'sent'")
                .fetch_one(pool)
                .await
                .expect("count");
        if sent as usize >= n {
            break;
        }
        if std::env::var("BENCH_TRACE").is_ok() {
            let row = sqlx::query(
                "SELECT (SELECT count(*) FROM outbox) AS outbox,
                        (SELECT count(*) FROM notifications WHERE status = 'queued') AS queued,
                        (SELECT count(*) FROM notifications WHERE in_flight) AS in_flight",
            )
            .fetch_one(pool)
            .await
            .expect("trace");
            println!(
                "trace: sent {sent} outbox {} queued {} in_flight {}",
                row.get::<i64, _>("outbox"),
                row.get::<i64, _>("queued"),
                row.get::<i64, _>("in_flight")
            );
        }
        assert!(Instant::now() < deadline, "only {sent} of {n} sent");
        tokio::time::sleep(Duration::from_millis(
            if std::env::var("BENCH_TRACE").is_ok() {
                500
            } else {
                50
            },
        ))
        .await;
    }
    sqlx::query(
        "SELECT n.recipient_id, extract(epoch FROM h.at)::float8 AS at
           FROM notification_status_history h JOIN notifications n ON n.id = h.notification_id
          WHERE h.status = 'sent'",
    )
    .fetch_all(pool)
    .await
    .expect("history")
    .iter()
    .map(|r| (r.get("recipient_id"), r.get("at")))
    .collect()
}

/// One burst of `EVENTS` payment events (customers `from..`), timed until
/// every email is accepted by the catcher; prints its figures.
async fn burst(pool: &PgPool, label: &str, via: Via<'_>, from: usize) {
    let started = now_secs();
    let published = publish(via, label, from, from + EVENTS, None).await;
    let publish_secs = now_secs() - started;
    let sent = wait_sent(pool, from + EVENTS).await;
    let mut latencies: Vec<f64> = published
        .iter()
        .filter_map(|(customer, at)| sent.get(customer).map(|done| (done - at) * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let last = published
        .keys()
        .filter_map(|c| sent.get(c))
        .copied()
        .fold(f64::MIN, f64::max);
    let elapsed = last - started;
    let phase = sqlx::query(
        "SELECT extract(epoch FROM max(created_at))::float8 AS recorded,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at - created_at)) * 1000 AS wait_p50,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - claimed_at)) * 1000 AS send_p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM updated_at - claimed_at)) * 1000 AS send_p99,
                count(*) FILTER (WHERE attempts > 1) AS retried
           FROM notifications WHERE created_at >= to_timestamp($1)",
    )
    .bind(started)
    .fetch_one(pool)
    .await
    .expect("stages");
    println!(
        "burst, {label}: {EVENTS} events → emails accepted by the SMTP catcher in {elapsed:.2} s = {:.0} emails/s \
         (publishing took {publish_secs:.2} s)",
        EVENTS as f64 / elapsed
    );
    println!(
        "  latency event → email accepted: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  stages: all recorded after {:.2} s; recorded → claimed p50 {:.1} ms; claimed → sent (daprd → binding → SMTP) p50 {:.1} ms, p99 {:.1} ms; retried {}",
        phase.get::<f64, _>("recorded") - started,
        phase.get::<f64, _>("wait_p50"),
        phase.get::<f64, _>("send_p50"),
        phase.get::<f64, _>("send_p99"),
        phase.get::<i64, _>("retried"),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let env = TestEnv::start().await.expect("test env");
    let catcher = SmtpCatcher::start(env.dir()).await.expect("SMTP catcher");
    let source = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "bench".into(),
    };
    let mut settings = source.load::<Settings>().expect("settings");
    let db = TestDatabase::create_in_place(&mut settings.database)
        .await
        .expect("database");
    settings.server.port = 0;
    let issuer = TestIssuer::start().await.expect("issuer");
    issuer.apply_to(&mut settings.auth);
    let mut dapr = DaprdOptions::new("communication").expect("ports");
    // The pluggable SMTP binding, in this process (its own process in a
    // deployment; the CPU is spent on this machine either way).
    let sockets = env.dir().join("sockets");
    let _email_binding = smtp_mime_binding::RunningBinding::spawn(&sockets)
        .await
        .expect("SMTP binding");
    let unreachable = format!(
        "http://127.0.0.1:{}",
        platform_test_support::free_port().expect("port")
    );
    dapr.env = vec![
        ("COMMUNICATION_SMTP_HOST".into(), "127.0.0.1".into()),
        (
            "COMMUNICATION_SMTP_PORT".into(),
            catcher.smtp_port().to_string(),
        ),
        ("COMMUNICATION_SMS_PRIMARY_URL".into(), unreachable.clone()),
        (
            "COMMUNICATION_SMS_SECONDARY_URL".into(),
            unreachable.clone(),
        ),
        ("COMMUNICATION_PUSH_URL".into(), unreachable),
        (
            "DAPR_COMPONENTS_SOCKETS_FOLDER".into(),
            sockets.display().to_string(),
        ),
    ];
    let (app, daprd) = start_with_options(&env, dapr, |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(communication::startup::build(settings).await?) }
    })
    .await
    .expect("communication with its sidecar");
    app.wait_ready(Duration::from_secs(60))
        .await
        .expect("ready");

    let pool = db.pool().await.expect("pool");
    let total = WARMUP + 2 * EVENTS + PACED_EVENTS;
    sqlx::query(
        "INSERT INTO recipients (id, email, locale)
         SELECT 'cust-' || i, 'cust-' || i || '@bench.example', 'en'
           FROM generate_series(0, $1 - 1) AS i",
    )
    .bind(total as i32)
    .execute(&pool)
    .await
    .expect("recipients");

    println!("communication benchmark on {}", machine());
    publish(Via::Broker(&env.redis), "warmup", 0, WARMUP, None).await;
    wait_sent(&pool, WARMUP).await;

    let mut next = WARMUP;
    for (label, via) in [
        ("events appended to the broker", Via::Broker(&env.redis)),
        (
            "events published through the service's own sidecar",
            Via::Sidecar(&daprd),
        ),
    ] {
        burst(&pool, label, via, next).await;
        next += EVENTS;
        assert_eq!(
            catcher.count().await.expect("catcher count") as usize,
            next,
            "every email reached the catcher once"
        );
    }

    // Latency at a steady rate below saturation.
    let paced = publish(
        Via::Broker(&env.redis),
        "paced",
        next,
        total,
        Some(PACED_RATE),
    )
    .await;
    let sent = wait_sent(&pool, total).await;
    let mut paced_latencies: Vec<f64> = paced
        .iter()
        .filter_map(|(customer, at)| sent.get(customer).map(|done| (done - at) * 1000.0))
        .collect();
    paced_latencies.sort_by(f64::total_cmp);
    println!(
        "steady {PACED_RATE:.0} events/s ({PACED_EVENTS} events appended to the broker): \
         latency event → email accepted p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        percentile(&paced_latencies, 50.0),
        percentile(&paced_latencies, 90.0),
        percentile(&paced_latencies, 99.0),
    );
    assert_eq!(
        catcher.count().await.expect("catcher count") as usize,
        total,
        "every email reached the catcher once"
    );

    // The service's own view of one send (waiting for a free SMTP binding
    // included), over its recent sends.
    let text = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let quantile = |q: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "notification_send_seconds{{channel=\"email\",quantile=\"{q}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |v| v * 1000.0)
    };
    println!(
        "one send as the worker sees it (daprd → bindings.smtp-mime → SMTP), recent sends (steady run): p50 {:.1} ms, p99 {:.1} ms",
        quantile("0.5"),
        quantile("0.99")
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at the end (1, 5, 15 min): {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(daprd);
    drop(app);
}
