//! `make bench-bookings`: in one run, on this machine (bookings in-process,
//! its real daprd, the Dapr scheduler, Redis and PostgreSQL share the
//! cores with the load generator):
//!
//! 1. the catalogue (`GET /v1/offerings`, 20 offerings) read by 32
//!    concurrent clients through the shared cache and with it bypassed
//!    (`Cache-Control: no-cache`): reads/s, p50/p99, the ratio, the hit
//!    ratio;
//! 2. 1,000 concurrent bookers on an offering with 100 places: exactly 100
//!    reserved and 900 refused, reservations/s and p50/p99, then the 100
//!    confirmed by their `payments.payment.succeeded` events (published
//!    through the sidecar; payments itself is not part of this bench);
//! 3. the lateness of hold-time deadlines fired by the Dapr scheduler
//!    (release time minus hold end) for 50 bookings.
//!
//! With `BOOKINGS_BENCH_PROFILE=1`, the paced run of 2 also prints what
//! bookings' database connections were doing (`pg_stat_activity` sampled
//! every 5 ms: row-lock waits, WAL flushes, transactions waiting for the
//! app), the evidence in ADR 0038.
//!
//! The booking request does not wait for the payment call here
//! (`inline_calls_ms = 0`: payments is not running), so the reservation
//! figures are the database's decision and the answer.

#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "a benchmark: prints its figures, failures end the run loudly"
)]

#[path = "../tests/api/helpers.rs"]
#[expect(dead_code, reason = "the tests' helpers, not all used here")]
mod helpers;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::join_all;
use helpers::{TestApp, World, payment_data};
use platform_test_support::bench::{machine, percentile};
use platform_test_support::eventually;
use serde_json::Value;

const READERS: usize = 32;
const READS: usize = 2000;

struct Reads {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    hits: usize,
}

async fn read_catalogue(app: &TestApp, bypass: bool) -> Reads {
    let next = Arc::new(AtomicUsize::new(0));
    let url = app.app.url("/v1/offerings?limit=20");
    let started = Instant::now();
    let workers = (0..READERS).map(|_| {
        let next = next.clone();
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let mut latencies = Vec::new();
            let mut hits = 0;
            while next.fetch_add(1, Ordering::Relaxed) < READS {
                let mut request = http.get(&url);
                if bypass {
                    request = request.header("cache-control", "no-cache");
                }
                let t = Instant::now();
                let res = request.send().await.expect("read");
                assert_eq!(res.status(), 200);
                if res.headers()["x-cache"] == "hit" {
                    hits += 1;
                }
                res.bytes().await.expect("body");
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, hits)
        }
    });
    let results = join_all(workers).await;
    let elapsed = started.elapsed().as_secs_f64();
    let hits = results.iter().map(|(_, h)| h).sum();
    let mut latencies: Vec<f64> = results.into_iter().flat_map(|(l, _)| l).collect();
    latencies.sort_by(f64::total_cmp);
    Reads {
        per_sec: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        hits,
    }
}

/// `BOOKINGS_BENCH_PROFILE=1`: what bookings' database connections are
/// doing, sampled from `pg_stat_activity` every 5 ms (state and wait event;
/// "running" is a backend on the CPU or between waits). Returns the number
/// of samples and the count of each state.
async fn sample_database(
    pool: sqlx::PgPool,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    let mut counts = std::collections::BTreeMap::new();
    let mut samples = 0;
    while !stop.load(Ordering::Relaxed) {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT coalesce(state, '?') || ' ' || coalesce(wait_event_type || ':' || wait_event, 'running')
                    || coalesce(' ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 40), '')
               FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND backend_type = 'client backend' AND state <> 'idle'",
        )
        .fetch_all(&pool)
        .await
        .expect("pg_stat_activity");
        samples += 1;
        for row in rows {
            *counts.entry(row).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (samples, counts)
}

#[tokio::main]
async fn main() {
    println!("bench-bookings on {}", machine());
    let world = World::start().await;
    let app = TestApp::spawn_with(&world, 900, |s| s.bookings.inline_calls_ms = 0).await;
    for _ in 0..20 {
        app.create_offering(50).await;
    }

    // 1. The catalogue, bypassed first (the baseline), then cached.
    println!("(warming up)");
    let _ = read_catalogue(&app, true).await;
    let uncached = read_catalogue(&app, true).await;
    let cached = read_catalogue(&app, false).await;
    println!("\ncatalogue: {READS} reads of 20 offerings, {READERS} concurrent clients");
    println!(
        "  bypassed (database): {:>8.0} reads/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
        uncached.per_sec, uncached.p50_ms, uncached.p99_ms
    );
    println!(
        "  cached (local + shared tiers): {:>8.0} reads/s  p50 {:>6.2} ms  p99 {:>6.2} ms  hit ratio {:.3}",
        cached.per_sec,
        cached.p50_ms,
        cached.p99_ms,
        cached.hits as f64 / READS as f64
    );
    println!(
        "  cached / bypassed: {:.2}x",
        cached.per_sec / uncached.per_sec
    );

    // 2. 1,000 concurrent bookers, 100 places.
    println!("(1000 bookers)");
    let offering = app.create_offering(100).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let answers = join_all((0..1000).map(|i| {
        let app = &app;
        let offering_id = offering_id.clone();
        async move {
            let t = Instant::now();
            let res = app.book(&offering_id, &format!("bench-{i}")).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or_default();
            (status, body, t.elapsed().as_secs_f64() * 1000.0)
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let reserved: Vec<String> = answers
        .iter()
        .filter(|(s, _, _)| *s == 201)
        .map(|(_, b, _)| b["id"].as_str().unwrap().to_owned())
        .collect();
    let refused = answers
        .iter()
        .filter(|(s, b, _)| *s == 409 && b["code"] == "sold_out")
        .count();
    let mut latencies: Vec<f64> = answers.iter().map(|(_, _, l)| *l).collect();
    latencies.sort_by(f64::total_cmp);
    println!("\nreservations: 1000 concurrent bookers, 100 places");
    println!(
        "  {} reserved, {refused} refused (sold out), {} other; places taken {}",
        reserved.len(),
        1000 - reserved.len() - refused,
        app.taken(&offering_id).await
    );
    println!(
        "  {:>8.0} requests/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        1000.0 / elapsed,
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0)
    );
    assert_eq!(reserved.len(), 100, "exactly 100 places");
    assert_eq!(refused, 900);
    for id in &reserved {
        let payment = app.payment_created(id).await;
        app.publish_payment_event("payments.payment.succeeded", payment_data(&payment, 12000))
            .await;
    }
    let confirmed = eventually(Duration::from_secs(60), "100 confirmed", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE offering_id = $1::uuid AND state = 'confirmed'",
        )
        .bind(&offering_id)
        .fetch_one(&app.pool)
        .await
        .ok()?;
        (n == 100).then_some(n)
    })
    .await
    .expect("every paid booking confirmed");
    println!(
        "  confirmed by payments events: {confirmed}; oversold: none (taken {} of 100)",
        app.taken(&offering_id).await
    );

    // 2b. The same again at half that rate, paced (one request every
    // 2/rate seconds): the latency a booker sees when bookings is not
    // saturated.
    let rate = 1000.0 / elapsed / 2.0;
    let offering = app.create_offering(100).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let profile = std::env::var_os("BOOKINGS_BENCH_PROFILE").map(|_| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = tokio::spawn(sample_database(app.pool.clone(), stop.clone()));
        (stop, sampler)
    });
    let mut tasks = Vec::new();
    let started = Instant::now();
    for i in 0..300 {
        tokio::time::sleep_until((started + gap * i).into()).await;
        let http = app.http.clone();
        let url = app.app.url("/v1/bookings");
        let offering_id = offering_id.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let res = http
                .post(url)
                .header("Idempotency-Key", format!("paced-{i}"))
                .json(&serde_json::json!({ "offering_id": offering_id, "participant": "member-1" }))
                .send()
                .await
                .expect("book");
            (res.status().as_u16(), t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut paced = Vec::new();
    let mut statuses = (0, 0);
    for task in tasks {
        let (status, latency) = task.await.expect("task");
        match status {
            201 => statuses.0 += 1,
            409 => statuses.1 += 1,
            other => panic!("unexpected {other}"),
        }
        paced.push(latency);
    }
    paced.sort_by(f64::total_cmp);
    if let Some((stop, sampler)) = profile {
        stop.store(true, Ordering::Relaxed);
        let (samples, counts) = sampler.await.expect("sampler");
        println!(
            "  bookings' database connections during the paced run ({samples} samples every 5 ms):"
        );
        for (what, n) in counts {
            println!(
                "    {:>6.1} %  {what}",
                100.0 * n as f64 / samples.max(1) as f64
            );
        }
    }
    println!(
        "  paced at half that rate ({rate:.0}/s, 300 bookers, 100 places): {} reserved, {} refused; p50 {:.2} ms  p99 {:.2} ms",
        statuses.0,
        statuses.1,
        percentile(&paced, 50.0),
        percentile(&paced, 99.0)
    );
    assert_eq!(statuses, (100, 200));
    assert_eq!(app.taken(&offering_id).await, 100);
    drop(app);

    // 3. Deadlines: 50 holds of 2 s released by their Dapr jobs.
    println!("(50 holds)");
    let app = TestApp::spawn_with(&world, 2, |s| s.bookings.inline_calls_ms = 5000).await;
    let offering = app.create_offering(50).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    for i in 0..50 {
        assert_eq!(
            app.book(&offering_id, &format!("hold-{i}")).await.status(),
            201
        );
    }
    eventually(Duration::from_secs(90), "50 holds released", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM bookings WHERE offering_id = $1::uuid AND state = 'released'",
        )
        .bind(&offering_id)
        .fetch_one(&app.pool)
        .await
        .ok()?;
        (n == 50).then_some(())
    })
    .await
    .expect("every hold released");
    let mut lateness: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM h.at - b.hold_until) * 1000)::float8
           FROM booking_history h JOIN bookings b ON b.id = h.booking_id
          WHERE b.offering_id = $1::uuid AND h.cause = 'hold_expired'",
    )
    .bind(&offering_id)
    .fetch_all(&app.pool)
    .await
    .expect("lateness");
    lateness.sort_by(f64::total_cmp);
    println!("\nhold deadlines (Dapr Jobs API, scheduler): 50 holds of 2 s");
    println!(
        "  released after the hold's end: p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        percentile(&lateness, 50.0),
        percentile(&lateness, 99.0),
        lateness.last().copied().unwrap_or(f64::NAN)
    );
}
