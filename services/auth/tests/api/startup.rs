//! The real binary, as a process: production refuses development secrets
//! before anything starts.

use std::process::Command;
use std::time::Duration;

use platform_test_support::run_until_exit;

#[test]
fn production_with_development_secrets_stops_the_binary_at_start_with_a_message() {
    let (status, stderr) = run_until_exit(
        Command::new(env!("CARGO_BIN_EXE_auth"))
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
            .env_remove("APP__DATABASE__PASSWORD"),
        Duration::from_secs(10),
    );
    assert!(!status.success());
    for expected in [
        "oauth.bootstrap_admin_secret (set APP__OAUTH__BOOTSTRAP_ADMIN_SECRET)",
        "database.password (set APP__DATABASE__PASSWORD)",
    ] {
        assert!(stderr.contains(expected), "{stderr}");
    }
    assert!(!stderr.contains("local-only-admin-secret"), "{stderr}");
}
