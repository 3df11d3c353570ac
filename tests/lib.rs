//! Cross-service tests live in `tests/`; this library holds what they share:
//! where each service's settings are and the payments state database.

use std::path::Path;

use platform_settings::{DatabaseSettings, Source};

/// `services/<service>/config` with the `test` environment.
pub fn source(service: &str) -> Source {
    Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../services")
            .join(service)
            .join("config"),
        environment: "test".into(),
    }
}

/// The `payments` role and database of scripts/sql/service-databases.sql
/// (payments' state store; a test creates its own database from it).
pub fn payments_database() -> DatabaseSettings {
    DatabaseSettings {
        host: "127.0.0.1".into(),
        port: 5432,
        username: "payments".into(),
        password: "payments".to_owned().into(),
        database_name: "payments".into(),
        require_ssl: false,
        max_connections: 2,
        acquire_timeout_ms: 5000,
    }
}
