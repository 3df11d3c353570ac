//! Facts about the repository the tests run in.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The workspace root (where `Cargo.toml` with `[workspace]` is).
pub fn repo_root() -> PathBuf {
    // This crate lives at <root>/crates/test-support.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

/// The Dapr runtime version pinned in `tools/dapr/go.mod`, e.g. `1.18.1`.
pub fn pinned_dapr_version() -> anyhow::Result<&'static str> {
    static VERSION: OnceLock<Result<String, String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let go_mod = std::fs::read_to_string(repo_root().join("tools/dapr/go.mod"))
                .map_err(|e| e.to_string())?;
            go_mod
                .lines()
                .find_map(|line| {
                    let mut parts = line.split_whitespace();
                    (parts.next() == Some("github.com/dapr/dapr"))
                        .then(|| parts.next())
                        .flatten()
                })
                .map(|v| v.trim_start_matches('v').to_owned())
                .ok_or_else(|| "tools/dapr/go.mod does not require github.com/dapr/dapr".to_owned())
        })
        .as_deref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}
