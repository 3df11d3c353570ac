//! Every scope auth's migrations grant (to a role or a client) is one that
//! some service requires: a granted scope nothing requires is a typo or a
//! rename that missed a side, and its holders are silently refused.
//!
//! Granted: what the migrations leave in a fresh database, so that a later
//! migration's rename counts. Required: the scopes named in each service's
//! `RequireScope::new(<validator>, <scope>)`, read from its source (a string
//! literal, or a `const` of that service), so that a new route's scope needs
//! no second list to keep up to date.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use platform_settings::DatabaseSettings;
use platform_test_support::TestDatabase;
use serde::Deserialize;

fn services() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../services")
}

#[expect(clippy::unwrap_used, reason = "the scan fails the test loudly")]
fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The value of `const <name>: &str = "<value>";` in `source`.
fn const_value(source: &str, name: &str) -> Option<String> {
    let start = source.find(&format!("const {name}: &str = \""))?;
    let rest = &source[start..];
    let value = &rest[rest.find('"')? + 1..];
    Some(value[..value.find('"')?].to_owned())
}

/// The scopes each service's routes require.
#[expect(clippy::unwrap_used, reason = "the scan fails the test loudly")]
fn required_scopes() -> BTreeSet<String> {
    let mut required = BTreeSet::new();
    for service in fs::read_dir(services()).unwrap() {
        let mut files = Vec::new();
        rust_files(&service.unwrap().path().join("src"), &mut files);
        let sources: Vec<String> = files
            .iter()
            .map(|f| fs::read_to_string(f).unwrap())
            .collect();
        let all = sources.concat();
        for source in &sources {
            for (at, _) in source.match_indices("RequireScope::new(") {
                let args = &source[at + "RequireScope::new(".len()..];
                let args = &args[..args.find(')').unwrap()];
                let scope = args.rsplit(',').next().unwrap().trim();
                let scope = match scope.strip_prefix('"') {
                    Some(literal) => literal.trim_end_matches('"').to_owned(),
                    None => const_value(&all, scope)
                        .unwrap_or_else(|| panic!("no const {scope} in the service")),
                };
                required.insert(scope);
            }
        }
    }
    required
}

#[derive(Deserialize)]
struct AuthDatabase {
    database: DatabaseSettings,
}

#[tokio::test]
async fn every_scope_the_seed_grants_is_required_by_a_service() {
    let required = required_scopes();
    assert!(
        required.contains("payments:write") && required.contains("auth:admin"),
        "the source scan found {required:?}"
    );

    let settings: AuthDatabase = platform_settings::load(&platform_tests::source("auth")).unwrap();
    let db = TestDatabase::create(&settings.database).await.unwrap();
    let pool = db.pool().await.unwrap();
    sqlx::migrate::Migrator::new(services().join("auth/migrations"))
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let granted: Vec<(String, String)> = sqlx::query_as(
        "SELECT 'role ' || name, unnest(scopes) FROM roles
         UNION ALL
         SELECT 'client ' || client_id, unnest(allowed_scopes) FROM clients",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(!granted.is_empty());

    let unknown: Vec<_> = granted
        .iter()
        .filter(|(_, scope)| !required.contains(scope))
        .collect();
    assert!(
        unknown.is_empty(),
        "granted but required by no service: {unknown:?} (required: {required:?})"
    );
}
