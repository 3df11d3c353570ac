//! Payments belong to the OAuth client that created them (ADR 0028): any
//! other client, whatever its scopes, sees and changes none of them (404, as
//! for an id that does not exist); `payments:admin` sees all.

use platform_test_support::authorized_client;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const READ_WRITE: &[&str] = &["payments:read", "payments:write"];

#[tokio::test]
async fn another_client_neither_sees_nor_changes_a_payment_and_an_admin_sees_all() {
    let app = TestApp::spawn().await;
    // Created by the default test client with an Idempotency-Key.
    let res = app
        .post(
            "/v1/payments",
            &json!({ "amount": 1250, "currency": "EUR", "customer_reference": "cus_owned" }),
            Some("create-owned-1"),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let other =
        authorized_client(&app.issuer.token_for("other-shop", "payments", READ_WRITE)).unwrap();
    let url = |path: &str| app.app.url(path);

    let res = other
        .get(url(&format!("/v1/payments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["code"], "payment_not_found",
        "as an unknown id: {body}"
    );
    for (path, body) in [
        ("confirm", json!({ "card_number": "4242424242424242" })),
        ("capture", json!({})),
        ("cancel", json!({})),
        ("refunds", json!({})),
    ] {
        let res = other
            .post(url(&format!("/v1/payments/{id}/{path}")))
            .header("Idempotency-Key", format!("other-{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}: {}", res.text().await.unwrap());
    }
    let listed: Value = other
        .get(url("/v1/payments?customer_reference=cus_owned"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "{listed}");

    // The owner's key replayed by another client creates that client's own
    // payment; it does not return (or reveal) the owner's answer.
    let res = other
        .post(url("/v1/payments"))
        .header("Idempotency-Key", "create-owned-1")
        .json(&json!({ "amount": 1250, "currency": "EUR", "customer_reference": "cus_owned" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let theirs: Value = res.json().await.unwrap();
    assert_ne!(theirs["id"], created["id"]);

    // Nothing happened to the owner's payment, which the owner still sees.
    let mine = app.payment(&id).await;
    assert_eq!(mine, created, "the other client's attempts changed it");
    let listed: Value = app
        .http
        .get(url("/v1/payments?customer_reference=cus_owned"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, vec![&created["id"]], "{listed}");

    // An admin sees both clients' payments.
    let admin = authorized_client(&app.issuer.token_for(
        "operator",
        "payments",
        &["payments:read", "payments:admin"],
    ))
    .unwrap();
    let res = admin
        .get(url(&format!("/v1/payments/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let listed: Value = admin
        .get(url("/v1/payments?customer_reference=cus_owned"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");
}
