//! The account directory (`GET /v1/accounts`: list and lookup by code),
//! the published id namespace, and the balance as the contract describes
//! it (every field present, contra accounts on their own side).

use serde_json::{Value, json};

use crate::helpers::{REFUNDED, SUCCEEDED, TestApp, authorized_client, new_id, payment_succeeded};

const DOCUMENT: &str = include_str!("../../../../contracts/openapi/bookkeeping.yaml");

#[test]
fn the_contract_publishes_the_namespace_the_ids_are_derived_in() {
    let published = DOCUMENT
        .lines()
        .find_map(|line| line.trim().strip_prefix("x-uuid-namespace:"))
        .unwrap()
        .trim();
    assert_eq!(
        published,
        bookkeeping::posting_rules::NAMESPACE.to_string(),
        "contracts/openapi/bookkeeping.yaml and posting_rules::NAMESPACE differ"
    );
}

async fn create(app: &TestApp, code: &str) -> String {
    let id = new_id();
    let body = json!({ "id": id, "code": code, "name": code, "kind": "asset", "currency": "EUR" });
    let (status, res) = app.post_json("/v1/accounts", &body).await;
    assert_eq!(status, 201, "{res}");
    id
}

#[tokio::test]
async fn accounts_are_listed_in_code_order_by_page_and_found_by_code() {
    let app = TestApp::spawn().await;
    let codes = ["asset:c", "asset:a", "asset:e", "asset:b", "asset:d"];
    let mut ids = std::collections::HashMap::new();
    for code in codes {
        ids.insert(code, create(&app, code).await);
    }

    let mut seen = Vec::new();
    let mut path = "/v1/accounts?limit=2".to_owned();
    loop {
        let (status, page) = app.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2, "{page}");
        for account in page["items"].as_array().unwrap() {
            seen.push(account["code"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/accounts?limit=2&after={next}"),
            None => {
                assert_eq!(page["next"], Value::Null, "{page}");
                break;
            }
        }
    }
    assert_eq!(
        seen,
        ["asset:a", "asset:b", "asset:c", "asset:d", "asset:e"]
    );

    let (status, found) = app.get_json("/v1/accounts?code=asset:d").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["items"][0]["id"], ids["asset:d"]);
    assert_eq!(found["next"], Value::Null);
    let (status, none) = app.get_json("/v1/accounts?code=asset:zz").await;
    assert_eq!(status, 200);
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn bad_listing_queries_are_400_problems_and_the_listing_needs_the_read_scope() {
    let app = TestApp::spawn().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=x",
        "colour=red",
        "code=a%00b",
        "after=%01",
        // Outside the contract's pattern: malformed, not "no such account".
        "code=",
        "code=Asset:d",
        "code=-asset",
        "after=",
    ] {
        let res = app.get(&format!("/v1/accounts?{query}")).await;
        assert_eq!(res.status(), 400, "{query}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "invalid_query", "{query}: {body}");
    }
    let url = app.app.url("/v1/accounts");
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let writer =
        authorized_client(&app.issuer.token("bookkeeping", &["bookkeeping:write"])).unwrap();
    assert_eq!(writer.get(&url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn balances_carry_every_field_and_refunds_read_on_their_debit_side() {
    let app = TestApp::spawn().await;
    app.publish_payment_event(&new_id(), SUCCEEDED, payment_succeeded("pay_b", 1000))
        .await;
    // The sale booked before the refund is published: Dapr may deliver two
    // events of a topic concurrently, and the sequences below assume this
    // order (a CI run once booked the refund first).
    app.wait_deliveries("success", 1.0).await;
    let refund = json!({ "refund_id": "ref_b", "payment_id": "pay_b", "amount": 250, "currency": "EUR",
        "customer_reference": "cus_42", "occurred_at": "2026-11-26T11:00:00Z" });
    app.publish_payment_event(&new_id(), REFUNDED, refund).await;
    app.wait_deliveries("success", 2.0).await;

    let balance_of = |code: &'static str| {
        let app = &app;
        async move {
            let (status, page) = app.get_json(&format!("/v1/accounts?code={code}")).await;
            assert_eq!(status, 200, "{page}");
            let id = page["items"][0]["id"].as_str().unwrap().to_owned();
            let expected =
                uuid::Uuid::new_v5(&bookkeeping::posting_rules::NAMESPACE, code.as_bytes());
            assert_eq!(id, expected.to_string(), "{code}: id derived from its code");
            let (status, balance) = app.get_json(&format!("/v1/accounts/{id}/balance")).await;
            assert_eq!(status, 200, "{balance}");
            balance
        }
    };
    let refunds = balance_of("revenue:refunds:eur").await;
    assert_eq!(refunds["normal_side"], "debit", "{refunds}");
    assert_eq!(refunds["normal_balance"], 250, "{refunds}");
    assert_eq!(refunds["balance"], 250, "{refunds}");
    let sales = balance_of("revenue:sales:eur").await;
    assert_eq!(sales["normal_side"], "credit", "{sales}");
    assert_eq!(sales["normal_balance"], 1000, "{sales}");
    let clearing = balance_of("asset:psp-clearing:eur").await;
    assert_eq!(clearing["normal_side"], "debit");
    assert_eq!(clearing["normal_balance"], 750, "{clearing}");

    // Every field of the contract's Balance, as_of_sequence included: the
    // last entry in the balance (the refund's, after the sale's).
    for balance in [&refunds, &sales, &clearing] {
        for field in [
            "account_id",
            "currency",
            "balance",
            "normal_side",
            "normal_balance",
            "as_of_sequence",
        ] {
            assert!(balance.get(field).is_some(), "{field} missing: {balance}");
        }
    }
    let refund_seq = refunds["as_of_sequence"].as_i64().unwrap();
    let sale_seq = sales["as_of_sequence"].as_i64().unwrap();
    assert!(sale_seq >= 1 && refund_seq > sale_seq, "{sales} {refunds}");
    assert_eq!(clearing["as_of_sequence"].as_i64().unwrap(), refund_seq);
    let id = refunds["account_id"].as_str().unwrap();
    let (_, before) = app
        .get_json(&format!(
            "/v1/accounts/{id}/balance?as_of_sequence={sale_seq}"
        ))
        .await;
    assert_eq!(before["normal_balance"], 0, "{before}");
    assert_eq!(before["as_of_sequence"], sale_seq, "{before}");

    // A sequence no entry can have is a malformed query (found by
    // `make fuzz-smoke`: -262939674 was answered 200 with that sequence).
    for bad in ["-1", "-262939674", "9223372036854775808"] {
        let (status, problem) = app
            .get_json(&format!("/v1/accounts/{id}/balance?as_of_sequence={bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {problem}");
        assert_eq!(problem["code"], "invalid_query", "{bad}: {problem}");
    }
}

#[tokio::test]
async fn bounds_a_new_account_could_never_meet_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    for (field, bounds) in [
        ("min_balance", json!({ "min_balance": 522 })),
        ("max_balance", json!({ "max_balance": -1 })),
    ] {
        let id = new_id();
        let mut body = json!({ "id": id, "code": format!("asset:{field}"), "name": "x", "kind": "revenue", "currency": "EUR" });
        body.as_object_mut()
            .unwrap()
            .extend(bounds.as_object().unwrap().clone());
        let (status, res) = app.post_json("/v1/accounts", &body).await;
        assert_eq!((status, res["field"].as_str()), (422, Some(field)), "{res}");
        let (status, _) = app.get_json(&format!("/v1/accounts/{id}")).await;
        assert_eq!(status, 404, "{field}: nothing stored");
    }
}
