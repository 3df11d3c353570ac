//! Findings of the first fuzz-smoke run (ADR 0039) kept as tests: the
//! account bodies `GET /v1/accounts` and `GET /v1/accounts/{id}` answer
//! hold the documented `Account` schema (it was `allOf` a schema that
//! forbids additional properties, so no body with `created_at` could).

use serde_json::{Value, json};

use crate::helpers::{TestApp, new_id};

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/bookkeeping.yaml");

/// Every violation of `value` against the document's schema `name`.
fn violations(name: &str, value: &Value) -> Vec<String> {
    let mut root: Value = serde_yaml::from_str(DOCUMENT).expect("the document is YAML");
    root["$ref"] = json!(format!("#/components/schemas/{name}"));
    let validator = platform_event_contracts::compile(&root)
        .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
    validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect()
}

#[tokio::test]
async fn listed_and_looked_up_accounts_hold_the_documented_account_schema() {
    let app = TestApp::spawn().await;
    let id = new_id();
    let body = json!({
        "id": id, "code": format!("asset:{}", &id[..8]), "name": "Cash",
        "kind": "asset", "currency": "EUR", "min_balance": null,
    });
    let (status, created) = app.post_json("/v1/accounts", &body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        violations("Account", &created),
        Vec::<String>::new(),
        "{created}"
    );

    let (status, one) = app.get_json(&format!("/v1/accounts/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert!(one["created_at"].is_string(), "{one}");
    assert_eq!(violations("Account", &one), Vec::<String>::new(), "{one}");

    let (status, list) = app.get_json("/v1/accounts?limit=50").await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().expect("items");
    assert!(items.iter().any(|a| a["id"] == id.as_str()), "{list}");
    for account in items {
        assert_eq!(
            violations("Account", account),
            Vec::<String>::new(),
            "{account}"
        );
    }
    // The check can fail: a body with a field the schema does not name.
    let mut extra = one.clone();
    extra["surprise"] = json!(1);
    assert!(!violations("Account", &extra).is_empty());
}
