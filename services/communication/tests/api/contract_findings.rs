//! Findings of the first fuzz-smoke run (ADR 0039) kept as tests: the
//! recipient bodies `GET`/`PUT /v1/recipients/{id}` answer hold the
//! documented `Recipient` schema (no `null` for a contact not stored, `id`
//! allowed), and a contact given as `null` — which the contract refuses,
//! its fields being strings — is refused and stores nothing.

use serde_json::{Value, json};

use crate::helpers::{Providers, TestApp, new_id};

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/communication.yaml");

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
async fn recipient_bodies_hold_the_documented_schema_and_a_null_contact_is_refused() {
    let app = TestApp::spawn(&Providers::unreachable()).await;
    let none = Vec::<String>::new();

    // The fuzzer's bodies: partial contacts, and none at all.
    let id = new_id("r");
    for contacts in [
        json!({"email": "0@0.com", "locale": "aa", "phone": "+1000000"}),
        json!({"phone": "+1000000", "push_token": "ù", "locale": "aa"}),
        json!({}),
    ] {
        let res = app.put(&format!("/v1/recipients/{id}"), &contacts).await;
        assert_eq!(res.status(), 200);
        let put: Value = res.json().await.unwrap();
        assert_eq!(
            violations("Recipient", &put),
            none,
            "PUT {contacts} answered {put}"
        );
        let res = app.get(&format!("/v1/recipients/{id}")).await;
        assert_eq!(res.status(), 200);
        let got: Value = res.json().await.unwrap();
        assert_eq!(got, put, "GET answers what PUT stored");
        assert_eq!(violations("Recipient", &got), none, "GET answered {got}");
    }
    let stored: Value = app
        .get(&format!("/v1/recipients/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored,
        json!({"id": id, "locale": "en"}),
        "PUT replaces every contact"
    );

    // ST201: `null` for a contact violates the document; refused, nothing stored.
    for field in ["push_token", "email", "phone", "locale"] {
        let body = json!({"email": "0@0.com", "locale": "aa", "phone": "+1000000", field: null});
        assert!(
            !violations("Contacts", &body).is_empty(),
            "the document refuses {body}"
        );
        let fresh = new_id("r");
        let res = app.put(&format!("/v1/recipients/{fresh}"), &body).await;
        let status = res.status().as_u16();
        assert!(matches!(status, 400 | 422), "{body} answered {status}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert!(problem["code"].is_string(), "{problem}");
        let res = app.get(&format!("/v1/recipients/{fresh}")).await;
        assert_eq!(res.status(), 404, "a refused PUT stores no recipient");
        // And an existing recipient keeps its contacts.
        let res = app.put(&format!("/v1/recipients/{id}"), &body).await;
        assert!(matches!(res.status().as_u16(), 400 | 422));
        let kept: Value = app
            .get(&format!("/v1/recipients/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(kept, stored);
    }
}
