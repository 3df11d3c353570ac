//! Findings against the contract (issue #16, ADR 0039) kept as tests:
//! input the schema allows but the provider refuses is the caller's
//! problem (4xx) and changes nothing.

use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_card_number_the_provider_refuses_is_422_and_the_payment_can_still_be_confirmed() {
    let app = TestApp::spawn_with_psp().await;
    let id = app.new_payment(1000, "automatic").await;

    // 14 digits: the contract's pattern allows 12 to 19, the sandbox
    // provider (like real ones for some schemes) accepts only 16.
    let res = app.confirm(&id, "42424242424242", None).await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "provider_rejected", "{problem}");
    assert!(problem["provider_code"].is_string(), "{problem}");

    let payment = app.payment(&id).await;
    assert_eq!(payment["status"], "requires_confirmation", "{payment}");
    let res = app.confirm(&id, "4242424242424242", None).await;
    assert_eq!(res.status(), 200, "a good card afterwards still confirms");
    assert_eq!(app.payment(&id).await["status"], "succeeded");
}
