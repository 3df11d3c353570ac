//! SMTP catcher throughput: mails/s accepted over SMTP, one connection per
//! mail (EHLO, MAIL, RCPT, DATA, QUIT), as Dapr's SMTP binding sends them,
//! with per-mail latency percentiles. Also checks that every mail arrived.
//!
//! `cargo bench -p platform-test-support --bench smtp_catcher`
//! (`SMTP_BENCH_MAILS`, default 5000; `SMTP_BENCH_CONCURRENCY`, default 32).
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark fails loudly and prints its figures"
)]

use platform_test_support::bench::{machine, percentile_duration};
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_test_support::{SmtpCatcher, smtp_send};
use tokio::sync::Semaphore;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn send_one(port: u16, n: usize) -> Duration {
    let started = Instant::now();
    let to = format!("member{n}@example.test");
    let message = format!(
        "From: noreply@lisasports.test\r\nTo: {to}\r\nSubject: Receipt {n}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nThank you for your payment of EUR 12.50."
    );
    let refused = smtp_send(port, "noreply@lisasports.test", &to, &message)
        .await
        .unwrap();
    assert!(
        refused.is_none(),
        "refused: {}",
        refused.unwrap_or_default()
    );
    started.elapsed()
}

fn main() {
    let mails = env_or("SMTP_BENCH_MAILS", 5000);
    let concurrency = env_or("SMTP_BENCH_CONCURRENCY", 32);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let catcher = SmtpCatcher::start(dir.path()).await.unwrap();
        let port = catcher.smtp_port();
        // Warm-up (imports, first connections).
        for n in 0..50 {
            send_one(port, n).await;
        }
        catcher.clear().await.unwrap();

        let permits = Arc::new(Semaphore::new(concurrency));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(mails);
        for n in 0..mails {
            let permit = Arc::clone(&permits).acquire_owned().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let latency = send_one(port, n).await;
                drop(permit);
                latency
            }));
        }
        let mut latencies = Vec::with_capacity(mails);
        for task in tasks {
            latencies.push(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let caught = catcher.count().await.unwrap();
        assert_eq!(caught, mails as u64, "every mail must arrive");

        println!("smtp-catcher: {mails} mails, {concurrency} connections at a time, one mail per connection");
        println!(
            "  throughput {:.0} mails/s ({:.2} s)",
            mails as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        println!(
            "  latency per mail: median/p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile_duration(&latencies, 50.0).as_secs_f64() * 1e3,
            percentile_duration(&latencies, 99.0).as_secs_f64() * 1e3,
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        );
        println!("  machine: {}", machine());
    });
}
