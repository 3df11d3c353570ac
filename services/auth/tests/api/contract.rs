//! The router and `contracts/openapi/auth.yaml` describe the same
//! operations (method and path), and the service serves that document at
//! `GET /openapi.yaml` (platform_server::openapi, ADR 0039). The routes
//! only the sidecar calls and the operational ones are left out
//! (`NOT_IN_CONTRACT`).

use platform_server::openapi;

use crate::helpers;

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/auth.yaml");

#[tokio::test]
async fn the_router_routes_exactly_the_documented_operations_and_serves_the_document() {
    let mut settings = helpers::settings();
    // auth connects to its database and seals its keys at start-up.
    let _db = platform_test_support::TestDatabase::create_in_place(&mut settings.database)
        .await
        .expect("test database");
    settings.server.port = 0;
    let server = auth::startup::build(settings).await.expect("auth builds");
    let excluded = openapi::NOT_IN_CONTRACT.to_vec();
    let matched = openapi::check(&server.router(), DOCUMENT, &excluded)
        .await
        .unwrap_or_else(|report| panic!("{report}"));
    assert!(matched >= 15, "only {matched} operations compared");
}

/// Every scope any contract names (`<service>:<scope>`), so that a client
/// discovers each from the metadata.
fn scopes_named_in_contracts() -> std::collections::BTreeSet<String> {
    let contracts = [
        DOCUMENT,
        include_str!("../../../../contracts/openapi/payments.yaml"),
        include_str!("../../../../contracts/openapi/bookkeeping.yaml"),
        include_str!("../../../../contracts/openapi/communication.yaml"),
        include_str!("../../../../contracts/openapi/bookings.yaml"),
    ];
    let services = [
        "auth",
        "payments",
        "bookkeeping",
        "communication",
        "bookings",
    ];
    let mut scopes = std::collections::BTreeSet::new();
    for text in contracts {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '_')) {
            if let Some((service, scope)) = word.split_once(':')
                && services.contains(&service)
                && ["read", "write", "admin"].contains(&scope)
            {
                scopes.insert(word.to_owned());
            }
        }
    }
    scopes
}

#[tokio::test]
async fn discovery_lists_every_scope_the_contracts_name() {
    let app = helpers::TestApp::spawn().await;
    let metadata: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let supported: Vec<&str> = metadata["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    let named = scopes_named_in_contracts();
    assert!(named.len() >= 10, "{named:?}");
    for scope in &named {
        assert!(
            supported.contains(&scope.as_str()),
            "{scope} is missing from scopes_supported {supported:?}"
        );
    }
    assert!(supported.contains(&"openid") && supported.contains(&"offline_access"));
    let same = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(same, metadata);
}
