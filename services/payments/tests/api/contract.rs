//! The router and `contracts/openapi/payments.yaml` describe the same
//! operations (method and path), and the service serves that document at
//! `GET /openapi.yaml` (platform_server::openapi, ADR 0039). The routes
//! only the sidecar calls and the operational ones are left out
//! (`NOT_IN_CONTRACT`, and the cron binding's route).

use platform_server::openapi;

use crate::helpers;

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/payments.yaml");

#[tokio::test]
async fn the_router_routes_exactly_the_documented_operations_and_serves_the_document() {
    let mut settings = helpers::settings();
    settings.server.port = 0;
    // The reconciliation cron binding (an input binding: sidecar only).
    let binding = format!("/{}", settings.reconciliation.binding);
    let server = payments::startup::build(settings)
        .await
        .expect("payments builds");
    let mut excluded: Vec<&str> = openapi::NOT_IN_CONTRACT.to_vec();
    excluded.push(binding.as_str());
    let matched = openapi::check(&server.router(), DOCUMENT, &excluded)
        .await
        .unwrap_or_else(|report| panic!("{report}"));
    assert!(matched >= 8, "only {matched} operations compared");
}
