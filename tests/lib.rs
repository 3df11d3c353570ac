//! Cross-service tests live in `tests/`; this library holds what they share:
//! where each service's settings are.

use std::path::Path;

use platform_settings::Source;

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
