//! `make bench-gateway`: what the edge gateway (ADR 0025) adds to
//! `GET /payments/v1/payments/{id}`, measured against the same request sent
//! straight to payments, in the same run, with vegeta (pinned, built by
//! scripts/install-vegeta.sh; its path in `VEGETA`).
//!
//! Set-up as in the edge tests: real payments with its sidecar (state in
//! PostgreSQL, `make infra`), real Caddy and gateway daprds from the
//! repository's configuration; the per-client limit is raised out of the
//! way (the limiter still runs on every request).
//!
//! Two measurements per target, targets alternating:
//! * latency at a fixed rate (`BENCH_RATE`/s, default 100, for
//!   `BENCH_SECS`, default 10): p50, p99 from vegeta's report;
//! * throughput: as fast as `BENCH_WORKERS` (default 16) workers go, for
//!   `BENCH_SECS`: successful requests per second.
//!
//! During each throughput run it also reads every process's CPU time from
//! `/proc` (grouped by program, daprd by its `--app-id`) and prints the CPU
//! each group spent per request: on a machine whose cores the load
//! generator, the gateway and the service share, the throughput ratio can
//! be no better than direct CPU per request / gateway CPU per request.

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark: prints its figures, failures end the run loudly"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use platform_test_support::bench::machine;
use platform_test_support::{EdgeGateway, EdgeOptions, RotatingIssuer, TestEnv, TestIssuer};
use platform_tests::start_payments;
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Report {
    p50_ms: f64,
    p99_ms: f64,
    throughput: f64,
    success: f64,
    requests: u64,
}

/// One vegeta attack on `url`; `rate` 0 = as fast as the workers go.
fn attack(vegeta: &str, url: &str, token: &str, rate: u64, workers: u64, secs: u64) -> Report {
    let mut args = vec![
        "attack".to_owned(),
        format!("-duration={secs}s"),
        format!("-rate={rate}/s"),
        "-timeout=10s".to_owned(),
        format!("-header=Authorization: Bearer {token}"),
    ];
    if rate == 0 {
        args.push(format!("-max-workers={workers}"));
        args.push(format!("-workers={workers}"));
    }
    let mut child = Command::new(vegeta)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("vegeta attack (scripts/install-vegeta.sh)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("GET {url}\n").as_bytes())
        .expect("target");
    let results = child.wait_with_output().expect("vegeta attack");
    let mut report = Command::new(vegeta)
        .args(["report", "-type=json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("vegeta report");
    report
        .stdin
        .take()
        .expect("stdin")
        .write_all(&results.stdout)
        .expect("results");
    let out = report.wait_with_output().expect("vegeta report");
    let r: Value = serde_json::from_slice(&out.stdout).expect("vegeta's JSON report");
    let ns = |v: &Value| v.as_f64().unwrap_or(f64::NAN) / 1e6;
    let report = Report {
        p50_ms: ns(&r["latencies"]["50th"]),
        p99_ms: ns(&r["latencies"]["99th"]),
        throughput: r["throughput"].as_f64().unwrap_or(0.0),
        success: r["success"].as_f64().unwrap_or(0.0),
        requests: r["requests"].as_u64().unwrap_or(0),
    };
    assert!(
        report.success > 0.99,
        "{url}: only {:.1} % of {} requests succeeded: {}",
        report.success * 100.0,
        report.requests,
        r["status_codes"]
    );
    report
}

/// CPU time (user + system, in clock ticks) of every process now running,
/// summed by program: `comm`, for daprd its `--app-id`; this process (which
/// runs payments in-process) counts its waited-for children (vegeta).
fn cpu_by_program() -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    let own_pid = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return by;
    };
    for entry in dir.flatten() {
        // Processes only: not `self`, `thread-self` (the same process again).
        if !entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime(14) stime(15): comm may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // After the comm: state is field 3, utime 14, stime 15, and the
        // waited-for children's cutime 16, cstime 17 (1-based): vegeta runs
        // as this process's child and has exited by the next snapshot.
        let cpu = ticks(11) + ticks(12) + ticks(13) + ticks(14);
        let mut name = comm.to_owned();
        if entry.file_name().to_str() == Some(own_pid.as_str()) {
            name = "this bench (payments app in-process, vegeta)".to_owned();
        }
        if comm == "daprd" {
            let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if let Some(id) = args.iter().skip_while(|a| *a != "--app-id").nth(1) {
                name = format!("daprd {id}");
            }
        }
        *by.entry(name).or_insert(0) += cpu;
    }
    by
}

/// CPU milliseconds per request by program between two snapshots (only
/// programs that used at least 1 % of the total).
fn cpu_per_request(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    requests: u64,
) -> Vec<(String, f64)> {
    // Linux counts CPU time in ticks of 10 ms (sysconf(_SC_CLK_TCK) = 100).
    let tick_ms = 10.0;
    let used: Vec<(String, u64)> = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect();
    let total: u64 = used.iter().map(|(_, v)| v).sum();
    let mut rows: Vec<(String, f64)> = used
        .into_iter()
        .filter(|(_, v)| *v * 100 >= total)
        .map(|(k, v)| (k, v as f64 * tick_ms / requests.max(1) as f64))
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let vegeta = std::env::var("VEGETA").unwrap_or_else(|_| {
        let out = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/install-vegeta.sh"
            ))
            .output()
            .expect("scripts/install-vegeta.sh");
        String::from_utf8(out.stdout)
            .expect("path")
            .trim()
            .to_owned()
    });
    let rate = env_or("BENCH_RATE", 100);
    let secs = env_or("BENCH_SECS", 10);
    let workers = env_or("BENCH_WORKERS", 16);

    let env = TestEnv::start().await.expect("test env");
    let issuer = RotatingIssuer::start().await.expect("issuer");
    let unused = TestIssuer::start().await.expect("issuer");
    let payments = start_payments(&env, &unused, |settings, _| {
        issuer.apply_to(&mut settings.auth);
        settings.telemetry.log_filter = "warn".into();
    })
    .await
    .expect("payments with its sidecar (make infra)");
    payments
        .app
        .wait_ready(Duration::from_secs(60))
        .await
        .expect("payments ready");
    let gateway = EdgeGateway::start(
        &env,
        EdgeOptions {
            issuer: issuer.issuer().to_owned(),
            jwks_url: issuer.jwks_url().to_owned(),
            services: vec!["payments".into()],
            client_rps: 1_000_000,
            ip_rps: 1_000_000,
        },
    )
    .await
    .expect("gateway");

    let token = issuer.token(
        0,
        "payments",
        "bench",
        &["payments:read", "payments:write"],
        3600,
    );
    let created: Value = reqwest::Client::new()
        .post(payments.app.url("/v1/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "bench-gateway")
        .json(&json!({ "amount": 1250, "currency": "EUR", "customer_reference": "cus_bench" }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("created");
    let id = created["id"].as_str().expect("payment id").to_owned();
    let direct = payments.app.url(&format!("/v1/payments/{id}"));
    let through = gateway.url(&format!("/payments/v1/payments/{id}"));

    println!("bench-gateway: GET /payments/v1/payments/{{id}} through the gateway vs directly");
    println!(
        "machine: {}; load average before: {}",
        machine(),
        load_average()
    );
    println!(
        "vegeta {}; latency at {rate}/s for {secs} s, throughput with {workers} workers for {secs} s",
        vegeta
    );
    // Warm-up: connections, JWKS, caches.
    let _ = attack(&vegeta, &direct, &token, 50, 0, 2);
    let _ = attack(&vegeta, &through, &token, 50, 0, 2);

    let v = vegeta.clone();
    let (t, d, g) = (token.clone(), direct.clone(), through.clone());
    let (lat_direct, lat_gateway, tp_direct, tp_gateway, cpu_direct, cpu_gateway) =
        tokio::task::spawn_blocking(move || {
            let lat_direct = attack(&v, &d, &t, rate, 0, secs);
            let lat_gateway = attack(&v, &g, &t, rate, 0, secs);
            let before = cpu_by_program();
            let tp_gateway = attack(&v, &g, &t, 0, workers, secs);
            let middle = cpu_by_program();
            let tp_direct = attack(&v, &d, &t, 0, workers, secs);
            let after = cpu_by_program();
            let cpu_gateway = cpu_per_request(&before, &middle, tp_gateway.requests);
            let cpu_direct = cpu_per_request(&middle, &after, tp_direct.requests);
            (
                lat_direct,
                lat_gateway,
                tp_direct,
                tp_gateway,
                cpu_direct,
                cpu_gateway,
            )
        })
        .await
        .expect("attacks");

    println!();
    println!(
        "{:<28} {:>9} {:>9} {:>12} {:>12}",
        "", "p50 ms", "p99 ms", "req/s max", "p99 at max"
    );
    for (name, lat, tp) in [
        ("direct (payments app)", lat_direct, tp_direct),
        ("through the gateway", lat_gateway, tp_gateway),
    ] {
        println!(
            "{name:<28} {:>9.2} {:>9.2} {:>12.0} {:>12.2}",
            lat.p50_ms, lat.p99_ms, tp.throughput, tp.p99_ms
        );
    }
    let added_p50 = lat_gateway.p50_ms - lat_direct.p50_ms;
    let added_p99 = lat_gateway.p99_ms - lat_direct.p99_ms;
    let ratio = tp_gateway.throughput / tp_direct.throughput;
    println!();
    println!(
        "added p50 {added_p50:.2} ms, added p99 {added_p99:.2} ms (goal ≤ 2 ms): {}",
        if added_p99 <= 2.0 { "met" } else { "NOT met" }
    );
    println!(
        "throughput ratio gateway/direct {ratio:.2} (goal ≥ 0.80): {}",
        if ratio >= 0.8 { "met" } else { "NOT met" }
    );
    println!();
    println!("CPU per request during the throughput runs, by program (ms; ≥ 1 % of the total):");
    let mut bound = [0.0_f64; 2];
    for (i, (name, rows)) in [
        ("direct", &cpu_direct),
        ("through the gateway", &cpu_gateway),
    ]
    .into_iter()
    .enumerate()
    {
        let total: f64 = rows.iter().map(|(_, ms)| ms).sum();
        bound[i] = total;
        let parts: Vec<String> = rows.iter().map(|(p, ms)| format!("{p} {ms:.3}")).collect();
        println!("  {name:<20} total {total:.3}: {}", parts.join(", "));
    }
    if bound[1] > 0.0 {
        println!(
            "  CPU-bound ceiling of the throughput ratio on this machine: {:.2} (direct CPU / gateway CPU per request)",
            bound[0] / bound[1]
        );
    }
    println!("load average after: {}", load_average());
}
