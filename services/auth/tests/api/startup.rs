//! The real binary, as a process: production refuses development secrets
//! before anything starts.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn production_with_development_secrets_stops_the_binary_at_start_with_a_message() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auth"))
        .env("APP_ENVIRONMENT", "production")
        // A real key-encryption key, so that the other secrets are judged.
        .env(
            "APP__KEYS__ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        // dapr.yaml's and docker-compose.yml's default; the database
        // password stays base.toml's.
        .env(
            "APP__OAUTH__BOOTSTRAP_ADMIN_SECRET",
            "local-only-admin-secret",
        )
        .env_remove("APP__DATABASE__PASSWORD")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("auth did not stop within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success());
    for expected in [
        "oauth.bootstrap_admin_secret (set APP__OAUTH__BOOTSTRAP_ADMIN_SECRET)",
        "database.password (set APP__DATABASE__PASSWORD)",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
    }
    assert!(!stderr.contains("local-only-admin-secret"), "{stderr}");
}
