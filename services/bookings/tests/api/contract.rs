//! The router and `contracts/openapi/bookings.yaml` describe the same
//! operations (method and path), and the service serves that document at
//! `GET /openapi.yaml` (platform_server::openapi, ADR 0039). The routes
//! only the sidecar calls and the operational ones are left out
//! (`NOT_IN_CONTRACT`).

use platform_server::openapi;

use crate::helpers;

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/bookings.yaml");

#[tokio::test]
async fn the_router_routes_exactly_the_documented_operations_and_serves_the_document() {
    let mut settings = helpers::settings();
    settings.server.port = 0;
    let server = bookings::startup::build(settings)
        .await
        .expect("bookings builds");
    let excluded = openapi::NOT_IN_CONTRACT.to_vec();
    let matched = openapi::check(&server.router(), DOCUMENT, &excluded)
        .await
        .unwrap_or_else(|report| panic!("{report}"));
    assert!(matched >= 8, "only {matched} operations compared");
}
