//! Paying a booking through bookings (docs/adr/0044): only the member's own
//! reserved booking with its payment, a plausible card, an Idempotency-Key;
//! every refusal changes nothing. (The payment itself, confirmed at the
//! real payments service, is proven by tests/tests/bookings_walkthrough.rs.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, World, payment_data};

#[tokio::test]
async fn paying_refuses_what_cannot_be_paid_and_changes_nothing() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(3).await;
    let offering_id = offering["id"].as_str().unwrap();
    let res = app.book(offering_id, "pay-1").await;
    assert_eq!(res.status(), 201);
    let booking: Value = res.json().await.unwrap();
    let id = booking["id"].as_str().unwrap().to_owned();
    let payment = app.payment_created(&id).await;
    let pay_url = app.app.url(&format!("/v1/bookings/{id}/pay"));
    let card = json!({ "card_number": "4242424242424242" });

    // Another member does not see the booking (no existence oracle).
    let stranger = platform_test_support::authorized_client(&world.issuer.token_for(
        "member-2",
        "bookings",
        &["bookings:read", "bookings:write"],
    ))
    .unwrap();
    let cases = [
        (
            stranger
                .post(&pay_url)
                .header("Idempotency-Key", "p1")
                .json(&card),
            404,
            "not_found",
        ),
        (
            app.http.post(&pay_url).json(&card),
            400,
            "idempotency_key_required",
        ),
        (
            app.http
                .post(&pay_url)
                .header("Idempotency-Key", "p2")
                .json(&json!({ "card_number": "4242-abc" })),
            422,
            "validation_failed",
        ),
        (
            app.http
                .post(&pay_url)
                .header("Idempotency-Key", "p3")
                .json(&json!({ "card_number": "4242424242424242", "cvc": "123" })),
            422,
            "invalid_body",
        ),
    ];
    for (request, status, code) in cases {
        let res = request.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
    }

    // Once the payment failed, the place is back and the booking cannot be
    // paid any more.
    app.publish_payment_event("payments.payment.failed", payment_data(&payment, 12000))
        .await;
    app.wait_for_state(&id, "released", Duration::from_secs(15))
        .await;
    let res = app
        .http
        .post(&pay_url)
        .header("Idempotency-Key", "p4")
        .json(&card)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_payable", "{body}");
    assert_eq!(app.booking(&id).await["state"], "released");
    assert_eq!(app.taken(offering_id).await, 0);
}
