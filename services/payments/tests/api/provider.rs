//! Payments against the PSP sandbox, through the sidecar's HTTPEndpoint and
//! its Resiliency policy.

use std::time::Duration;

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const GOOD: &str = "4242424242424242";
const DECLINED: &str = "4000000000000002";
const SLOW: &str = "4000000000000341";

#[tokio::test]
async fn automatic_capture_succeeds_and_publishes_succeeded_once() {
    let app = TestApp::spawn_with_psp().await;
    let id = app.new_payment(1250, "automatic").await;

    let res = app.confirm(&id, GOOD, None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    assert_eq!(body["amount_captured"], 1250);
    assert_eq!(body["attempts"][0]["id"], format!("{id}.a1"));

    // The provider's webhooks for the same authorization change nothing more.
    eventually(Duration::from_secs(20), "the succeeded event", || async {
        (app.events("payments.payment.succeeded", &id).await >= 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(40)));
    eventually(
        Duration::from_secs(20),
        "the webhooks delivered",
        || async { (app.stat("webhooks_delivered").await >= 1).then_some(()) },
    )
    .await
    .unwrap();
    assert_eq!(app.events("payments.payment.succeeded", &id).await, 1);
    assert_eq!(app.stat("authorizations_created").await, 1);
    // A second confirmation is refused without calling the provider.
    let again = app.confirm(&id, GOOD, None).await;
    assert_eq!(again.status(), 409);
    assert_eq!(app.stat("authorizations_created").await, 1);
}

#[tokio::test]
async fn manual_capture_then_refunds_up_to_the_captured_amount() {
    let app = TestApp::spawn_with_psp().await;
    let id = app.new_payment(1000, "manual").await;
    let res = app.confirm(&id, GOOD, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["status"],
        "requires_capture"
    );

    let too_much = app
        .post(
            &format!("/v1/payments/{id}/capture"),
            &json!({"amount": 1001}),
            None,
        )
        .await;
    assert_eq!(too_much.status(), 422);
    let captured = app
        .post(
            &format!("/v1/payments/{id}/capture"),
            &json!({"amount": 600}),
            None,
        )
        .await;
    assert_eq!(captured.status(), 200);
    let body: Value = captured.json().await.unwrap();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["amount_captured"], 600);

    let refund = app
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &json!({"amount": 400}),
            None,
        )
        .await;
    assert_eq!(refund.status(), 201);
    let refund: Value = refund.json().await.unwrap();
    assert_eq!(refund["status"], "succeeded");
    assert_eq!(refund["id"], format!("{id}.r1"));
    let over = app
        .post(
            &format!("/v1/payments/{id}/refunds"),
            &json!({"amount": 201}),
            None,
        )
        .await;
    assert_eq!(over.status(), 422);
    assert_eq!(
        over.json::<Value>().await.unwrap()["code"],
        "invalid_amount"
    );

    let payment = app.payment(&id).await;
    assert_eq!(payment["amount_refunded"], 400);
    assert_eq!(app.stat("captures").await, 1);
    assert_eq!(app.stat("refunds").await, 1);
    eventually(Duration::from_secs(20), "the refund event", || async {
        (app.events("payments.refund.succeeded", &id).await >= 1).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn cancel_voids_an_authorization_and_unconfirmed_payments_cancel_locally() {
    let app = TestApp::spawn_with_psp().await;
    let local = app.new_payment(500, "manual").await;
    let res = app
        .post(&format!("/v1/payments/{local}/cancel"), &json!({}), None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "canceled");
    assert_eq!(app.stat("requests").await, 0);

    let id = app.new_payment(500, "manual").await;
    assert_eq!(app.confirm(&id, GOOD, None).await.status(), 200);
    let res = app
        .post(&format!("/v1/payments/{id}/cancel"), &json!({}), None)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "canceled");
    assert_eq!(app.stat("voids").await, 1);
    let refund = app
        .post(&format!("/v1/payments/{id}/refunds"), &json!({}), None)
        .await;
    assert_eq!(refund.status(), 409);
}

#[tokio::test]
async fn a_decline_fails_the_payment_and_is_not_retried() {
    let app = TestApp::spawn_with_psp().await;
    let id = app.new_payment(1000, "automatic").await;
    let res = app.confirm(&id, DECLINED, None).await;
    assert_eq!(res.status(), 402);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "card_declined");
    assert_eq!(problem["decline_code"], "generic_decline");
    assert_eq!(app.payment(&id).await["status"], "failed");
    assert_eq!(app.stat("requests").await, 1, "a decline is never retried");
    eventually(Duration::from_secs(20), "the failed event", || async {
        (app.events("payments.payment.failed", &id).await >= 1).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_retriable_provider_error_is_retried_by_the_sidecar_with_the_same_key() {
    let app = TestApp::spawn_with_psp().await;
    app.psp()
        .configure(json!({"fail_next": 1, "fail_status": 503}))
        .await
        .unwrap();
    let id = app.new_payment(1000, "automatic").await;
    let res = app.confirm(&id, GOOD, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(app.stat("failures_injected").await, 1);
    assert_eq!(app.stat("authorizations_created").await, 1);
    assert_eq!(app.stat("requests").await, 2, "one failure, one retry");
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_and_serialise_duplicates() {
    let app = TestApp::spawn_with_psp().await;
    let body = json!({ "amount": 700, "currency": "EUR", "customer_reference": "cus_i" });
    let first = app.post("/v1/payments", &body, Some("create-1")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = app.post("/v1/payments", &body, Some("create-1")).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(app.payment_count().await, 1);

    let other = json!({ "amount": 701, "currency": "EUR", "customer_reference": "cus_i" });
    let mismatch = app.post("/v1/payments", &other, Some("create-1")).await;
    assert_eq!(mismatch.status(), 422);
    assert_eq!(
        mismatch.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );

    // Errors are replayed too.
    let bad = json!({ "amount": 0, "currency": "EUR", "customer_reference": "c" });
    assert_eq!(
        app.post("/v1/payments", &bad, Some("bad-1")).await.status(),
        422
    );
    let again = app.post("/v1/payments", &bad, Some("bad-1")).await;
    assert_eq!(again.status(), 422);
    assert_eq!(again.headers()["idempotent-replayed"], "true");

    // 20 concurrent confirmations with one key: one provider authorization.
    let id = first["id"].as_str().unwrap().to_owned();
    let confirms = (0..20).map(|_| app.confirm(&id, GOOD, Some("confirm-1")));
    let responses = futures::future::join_all(confirms).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort_unstable();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(app.stat("authorizations_created").await, 1, "{statuses:?}");
    let replay = app.confirm(&id, GOOD, Some("confirm-1")).await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(app.stat("authorizations_created").await, 1);
}

#[tokio::test]
async fn the_circuit_opens_against_a_failing_provider_and_closes_after_recovery() {
    let app = TestApp::spawn_with_psp().await;
    app.psp()
        .configure(json!({"failure_rate": 1.0, "fail_status": 500}))
        .await
        .unwrap();
    let id = app.new_payment(1000, "automatic").await;
    let before = app.payment(&id).await;

    // Failures until the breaker trips: every answer is a 503 that changed nothing.
    eventually(Duration::from_secs(30), "the circuit to open", || async {
        let res = app.confirm(&id, GOOD, None).await;
        assert_eq!(res.status(), 503);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "provider_unavailable");
        let sent = app.stat("failures_injected").await;
        let res = app.confirm(&id, GOOD, None).await;
        assert_eq!(res.status(), 503);
        (app.stat("failures_injected").await == sent).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(20)));
    // Open: answered without reaching the provider.
    let sent = app.stat("failures_injected").await;
    for _ in 0..5 {
        assert_eq!(app.confirm(&id, GOOD, None).await.status(), 503);
    }
    assert_eq!(app.stat("failures_injected").await, sent);
    assert_eq!(app.payment(&id).await, before, "nothing changed");
    assert_eq!(app.stat("authorizations_created").await, 0);

    // The provider recovers; after the breaker's timeout a probe closes it.
    app.psp()
        .configure(json!({"failure_rate": 0.0}))
        .await
        .unwrap();
    let done = eventually(Duration::from_secs(40), "the circuit to close", || async {
        let res = app.confirm(&id, GOOD, None).await;
        (res.status() == 200).then_some(res)
    })
    .await
    .unwrap();
    assert_eq!(done.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(app.stat("authorizations_created").await, 1);
}

#[tokio::test]
async fn a_timed_out_call_is_retried_by_the_sidecar_with_the_same_key() {
    let app = TestApp::spawn_with_psp().await;
    // The sandbox creates the authorization but answers after 8 s; the
    // sidecar's timeout (5 s) fires, its retry carries the same
    // Idempotency-Key and gets the recorded answer at once.
    app.psp().configure(json!({"slow_ms": 8000})).await.unwrap();
    let id = app.new_payment(1000, "automatic").await;
    let res = app.confirm(&id, SLOW, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "succeeded");
    assert_eq!(app.stat("authorizations_created").await, 1);
    assert_eq!(app.stat("requests").await, 2);
}

#[tokio::test]
async fn a_timeout_leaves_the_payment_processing_until_reconciliation_resolves_it() {
    // Without retries the sidecar's timeout is the end of the call: the
    // outcome is unknown.
    let app =
        TestApp::spawn_with_psp_policy(&|policy| policy.replace("maxRetries: 2", "maxRetries: 0"))
            .await;
    app.psp().configure(json!({"slow_ms": 8000})).await.unwrap();
    app.psp().set_webhook_url(None).await.unwrap();
    let id = app.new_payment(1000, "automatic").await;
    let res = app.confirm(&id, SLOW, None).await;
    assert_eq!(res.status(), 202, "{}", app.daprd.log_tail(20));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "processing", "{body}");
    assert_eq!(body["attempts"][0]["status"], "pending");

    // The cron binding's reconciliation asks the provider by reference.
    let done = app
        .wait_status(&id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(done["amount_captured"], 1000);
    assert_eq!(app.stat("authorizations_created").await, 1);
    eventually(Duration::from_secs(20), "the succeeded event", || async {
        (app.events("payments.payment.succeeded", &id).await >= 1).then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_event_is_published_once_even_when_the_service_stops_right_after_the_commit() {
    let app = TestApp::spawn_with_psp().await;
    app.psp().set_webhook_url(None).await.unwrap();
    let id = app.new_payment(990, "automatic").await;
    let res = app.confirm(&id, GOOD, None).await;
    assert_eq!(res.status(), 200);
    let TestApp {
        app: service,
        daprd,
        env,
        settings,
        db,
        ..
    } = app;
    // The service is gone the moment it has answered: its server task is
    // aborted, not drained (no graceful shutdown runs), as a kill would.
    // The event's fate is in the committed transaction alone.
    drop(service);
    let count = || async {
        let reply = env
            .redis
            .command(&["XRANGE", "payments", "-", "+"])
            .await
            .unwrap_or_default();
        reply
            .lines()
            .filter(|l| l.contains("\"type\":\"payments.payment.succeeded\"") && l.contains(&id))
            .count()
    };
    // Whatever the dead instance did not publish is still an outbox record;
    // the next instance (a restart, or another replica) publishes it.
    let restarted =
        platform_test_support::RunningApp::start(payments::startup::build(settings).await.unwrap())
            .unwrap();
    eventually(Duration::from_secs(30), "the succeeded event", || async {
        (count().await >= 1).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", daprd.log_tail(30)));
    eventually(Duration::from_secs(10), "the outbox drained", || async {
        (crate::helpers::state_rows(&db, "outbox:").await == 0).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count().await, 1);
    drop(restarted);
}

#[tokio::test]
async fn declines_in_a_row_do_not_open_the_circuit() {
    let app = TestApp::spawn_with_psp().await;
    // Dapr counts a 402 as a failed call; the breaker trips on a failure
    // ratio over a minimum volume, so a run of declines leaves it closed.
    for _ in 0..12 {
        let id = app.new_payment(1000, "automatic").await;
        assert_eq!(app.confirm(&id, DECLINED, None).await.status(), 402);
    }
    let id = app.new_payment(1000, "automatic").await;
    let res = app.confirm(&id, GOOD, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.stat("authorizations_created").await, 1);
}
