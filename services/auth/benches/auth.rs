//! `make bench-auth`: client-credentials grants/s with p50/p99 latency over
//! HTTP against the real server and a real PostgreSQL database, and
//! validations/s of `platform-auth-token`.
//!
//! Everything runs on this machine: the load generator and the server share
//! one process (and the cores with PostgreSQL), so the grant figure is a
//! floor for a server with the machine to itself. Knobs: `BENCH_SECONDS`
//! (default 10), `BENCH_CONCURRENCY` (default 32).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark binary: fail loudly, report on stdout"
)]

use platform_test_support::bench::{machine, percentile_duration};
use std::sync::Arc;
use std::time::{Duration, Instant};

use platform_auth_token::{JwkSet, StaticKeys, Validator, ValidatorConfig};
use platform_settings::Source;
use platform_test_support::{RunningApp, TestDatabase, free_port, json_answer};
use secrecy::SecretString;
use serde_json::{Value, json};

const ADMIN_SECRET: &str = "bench-admin-secret-0123456789abcdefghijkl";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `verify` in a loop for about `window` and prints the rate and the
/// median/p99 of batches of 1,000 calls, per call.
fn measure(label: &str, window: Duration, mut verify: impl FnMut() -> bool) -> f64 {
    const BATCH: u32 = 1_000;
    for _ in 0..BATCH {
        assert!(verify(), "{label}: a valid signature was refused");
    }
    let mut batches = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        let batch = Instant::now();
        for _ in 0..BATCH {
            assert!(verify(), "{label}: a valid signature was refused");
        }
        batches.push(batch.elapsed() / BATCH);
    }
    let rate = f64::from(BATCH) * batches.len() as f64 / start.elapsed().as_secs_f64();
    batches.sort();
    println!(
        "  {label}: {rate:.0}/s on one core; per verification p50 {:.1} µs, p99 {:.1} µs",
        percentile_duration(&batches, 50.0).as_secs_f64() * 1e6,
        percentile_duration(&batches, 99.0).as_secs_f64() * 1e6,
    );
    rate
}

/// ES256 signature verification alone, over one key, message and
/// signature: what a full token check is bounded by. `ring` is what
/// `platform-auth-token` uses; with `--features ecdsa-backends` the same
/// check by `aws-lc-rs` and RustCrypto's `p256` is measured too (ADR 0012).
fn signature_backends(window: Duration) {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key pair");
    let point = pair.public_key().as_ref().to_vec();
    // About the signing input of one of our access tokens.
    let message = vec![b'x'; 330];
    let signature = pair.sign(&rng, &message).expect("sign").as_ref().to_vec();

    println!(
        "ES256 signature verification ({} byte message):",
        message.len()
    );
    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    let ring = measure("ring 0.17 (UnparsedPublicKey)", window, || {
        ring_key.verify(&message, &signature).is_ok()
    });
    #[cfg(feature = "ecdsa-backends")]
    other_backends(window, ring, &point, &message, &signature);
    #[cfg(not(feature = "ecdsa-backends"))]
    println!("  (ring {ring:.0}/s; compare aws-lc-rs and p256 with --features ecdsa-backends)");
}

#[cfg(feature = "ecdsa-backends")]
fn other_backends(window: Duration, ring: f64, point: &[u8], message: &[u8], signature: &[u8]) {
    let aws_unparsed = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        point,
    );
    let aws_parsed = aws_unparsed.parse().expect("aws-lc-rs key");
    let aws = measure("aws-lc-rs 1 (ParsedPublicKey)", window, || {
        aws_parsed.verify_sig(message, signature).is_ok()
    });
    measure("aws-lc-rs 1 (UnparsedPublicKey)", window, || {
        aws_unparsed.verify(message, signature).is_ok()
    });

    let p256_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).expect("p256 key");
    let p256_signature = p256::ecdsa::Signature::from_slice(signature).expect("p256 signature");
    let rust_crypto = measure("p256 0.14 (RustCrypto, key parsed once)", window, || {
        use p256::ecdsa::signature::Verifier as _;
        p256_key.verify(message, &p256_signature).is_ok()
    });
    println!(
        "  relative to ring: aws-lc-rs {:.2}x, p256 {:.2}x",
        aws / ring,
        rust_crypto / ring
    );
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 10);
    let concurrency = env_or("BENCH_CONCURRENCY", 32) as usize;
    println!("machine: {}", machine());
    signature_backends(Duration::from_secs(seconds.min(3)));
    if std::env::var("BENCH_ONLY").as_deref() == Ok("signatures") {
        return;
    }

    let source = Source {
        config_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "bench".into(),
    };
    let mut settings = source.load::<auth::settings::Settings>().expect("settings");
    let _db = TestDatabase::create_in_place(&mut settings.database)
        .await
        .expect("database (run `make infra`)");
    let port = free_port().unwrap();
    settings.server.port = port;
    settings.oauth.issuer = format!("http://127.0.0.1:{port}");
    settings.oauth.bootstrap_admin_secret = Some(SecretString::from(ADMIN_SECRET));
    let issuer = settings.oauth.issuer.clone();
    let server = auth::startup::build(settings).await.expect("build auth");
    let app = RunningApp::start(server).unwrap();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    // A service client, created through the admin API.
    let admin = json_answer(
        http.post(app.url("/oauth2/token"))
            .basic_auth("platform-admin", Some(ADMIN_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "auth:admin"),
            ]),
    )
    .await
    .unwrap();
    let created = json_answer(
        http.post(app.url("/admin/clients"))
            .bearer_auth(admin["access_token"].as_str().unwrap())
            .json(&json!({
                "client_id": "bench", "name": "bench", "grant_types": ["client_credentials"],
                "allowed_scopes": ["payments:read", "payments:write"], "allowed_audiences": ["payments"],
            })),
    )
    .await
    .unwrap();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    // Grants: `concurrency` clients in a closed loop for `seconds`.
    let url = app.url("/oauth2/token");
    let run = |duration: Duration| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                let http = http.clone();
                let url = url.clone();
                let secret = secret.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut tokens = Vec::new();
                    let mut failures = 0u64;
                    let end = Instant::now() + duration;
                    while Instant::now() < end {
                        let start = Instant::now();
                        let res = http
                            .post(&url)
                            .basic_auth("bench", Some(&secret))
                            .form(&[
                                ("grant_type", "client_credentials"),
                                ("scope", "payments:read"),
                            ])
                            .send()
                            .await;
                        match res {
                            Ok(r) if r.status().is_success() => {
                                let body: Value = r.json().await.unwrap_or(Value::Null);
                                latencies.push(start.elapsed());
                                if tokens.len() < 200
                                    && let Some(t) = body["access_token"].as_str()
                                {
                                    tokens.push(t.to_owned());
                                }
                            }
                            _ => failures += 1,
                        }
                    }
                    (latencies, tokens, failures)
                })
            })
            .collect();
        async move {
            let mut latencies = Vec::new();
            let mut tokens = Vec::new();
            let mut failures = 0;
            for h in handles {
                let (l, t, f) = h.await.unwrap();
                latencies.extend(l);
                tokens.extend(t);
                failures += f;
            }
            (latencies, tokens, failures)
        }
    };
    run(Duration::from_secs(1)).await; // warm-up: pools, caches, JIT-free but page-in
    let started = Instant::now();
    let (mut latencies, tokens, failures) = run(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "client_credentials grants: {:.0}/s over {elapsed:.1} s, {concurrency} concurrent clients, {} ok, {failures} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len() as f64 / elapsed,
        latencies.len(),
        percentile_duration(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile_duration(&latencies, 99.0).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );

    // Validations: one task (one core), keys already fetched.
    let jwks: JwkSet = serde_json::from_value(
        json_answer(http.get(app.url("/oauth2/jwks")))
            .await
            .unwrap(),
    )
    .unwrap();
    drop(app);
    let keys = Arc::new(StaticKeys::new(jwks.verifying_keys()));
    for (label, cache) in [
        ("full check (signature every time)", 0),
        ("verified-token cache hit", 10_000),
    ] {
        let mut config = ValidatorConfig::new(&issuer, "payments");
        config.verified_cache_entries = cache;
        let validator = Validator::new(config, keys.clone());
        let window = Duration::from_secs(seconds.min(5));
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < window {
            for token in &tokens {
                validator.validate(token).await.expect("valid token");
                count += 1;
            }
        }
        let rate = count as f64 / start.elapsed().as_secs_f64();
        println!(
            "validations, {label}: {rate:.0}/s on one core ({} distinct tokens)",
            tokens.len()
        );
    }

    // The full check on every core at once (what a busy service gets).
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut config = ValidatorConfig::new(&issuer, "payments");
    config.verified_cache_entries = 0;
    let validator = Validator::new(config, keys);
    let tokens = Arc::new(tokens);
    let window = Duration::from_secs(seconds.min(5));
    let start = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let validator = validator.clone();
            let tokens = tokens.clone();
            std::thread::spawn(move || {
                let mut count = 0u64;
                while start.elapsed() < window {
                    for token in tokens.iter() {
                        futures::executor::block_on(validator.validate(token)).expect("valid");
                        count += 1;
                    }
                }
                count
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "validations, full check on {cores} threads: {:.0}/s",
        total as f64 / start.elapsed().as_secs_f64()
    );
}
