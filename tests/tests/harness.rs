//! The harness itself: it runs the pinned daprd and leaves no process behind,
//! also when a test panics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform_test_support::{Daprd, RunningApp, TestEnv, pinned_dapr_version, start_with_sidecar};
use platform_tests::source;

fn alive(pid: u32) -> bool {
    // A zombie still has /proc/<pid>; check its state too.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.split_whitespace()
            .nth(2)
            .is_some_and(|state| state != "Z")
    })
}

#[expect(clippy::unwrap_used, reason = "test set-up fails the test loudly")]
async fn payments_with_sidecar(env: &TestEnv) -> (RunningApp, Daprd) {
    let mut settings = source("payments")
        .load::<payments::settings::Settings>()
        .unwrap();
    settings.server.port = 0;
    start_with_sidecar(env, "payments", |dapr| {
        dapr.apply_to(&mut settings.dapr);
        async move { Ok(payments::startup::build(settings).await?) }
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_sidecar_is_the_pinned_daprd() {
    let env = TestEnv::start().await.unwrap();
    let (_app, daprd) = payments_with_sidecar(&env).await;
    assert_eq!(
        daprd.runtime_version().await.unwrap(),
        pinned_dapr_version().unwrap()
    );
}

#[test]
fn a_panicking_test_leaves_no_process_behind() {
    let pids = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pids);
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let env = TestEnv::start().await.unwrap();
            let (_app, daprd) = payments_with_sidecar(&env).await;
            seen.lock().unwrap().push(daprd.pid().unwrap());
            seen.lock().unwrap().push(env.redis.pid().unwrap());
            panic!("a test failing with a sidecar and a Redis running");
        });
    })
    .join();
    assert!(outcome.is_err(), "the inner test should have panicked");

    let pids = pids.lock().unwrap().clone();
    assert_eq!(pids.len(), 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|&pid| alive(pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived the panicking test");
    }
}
