//! The saga driven by payments' real events (published through the
//! sidecar, delivered by Dapr to the subscription) and by real Dapr job
//! deadlines from the scheduler.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{TestApp, World, causes, payment_data};

#[tokio::test]
async fn a_paid_booking_is_confirmed_once_and_a_member_cancellation_refunds_per_policy() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(2).await;
    let offering_id = offering["id"].as_str().unwrap();
    let id = app.reserve(offering_id, "happy").await;
    // The deadline was scheduled at the scheduler as the saga's first call.
    let (_, scheduled, _) = app.command(&id, "schedule_deadline").await.unwrap();
    assert!(scheduled, "the hold deadline is a Dapr job");
    let payment = app.payment_created(&id).await;

    // The same event twice (redelivery): one effect.
    let event = payment_data(&payment, 12000);
    app.publish_payment_event("payments.payment.succeeded", event.clone())
        .await;
    let confirmed = app
        .wait_for_state(&id, "confirmed", Duration::from_secs(15))
        .await;
    assert_eq!(confirmed["payment"]["id"], payment.as_str());
    app.publish_payment_event("payments.payment.failed", event.clone())
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = app.booking(&id).await;
    assert_eq!(
        still["state"], "confirmed",
        "a late failure changes nothing"
    );
    assert_eq!(app.taken(offering_id).await, 1);

    // The member cancels before the policy's date: 50 % back.
    let res = app
        .http
        .post(app.app.url(&format!("/v1/bookings/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cancelled: Value = res.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["refund_amount"], 6000);
    assert_eq!(app.taken(offering_id).await, 0, "the place went back");
    let (amount, _, _) = app.command(&id, "refund").await.unwrap();
    assert_eq!(
        amount,
        Some(6000),
        "the refund call is recorded once, with its amount"
    );
    // Cancelling again is refused and changes nothing.
    let again = app
        .http
        .post(app.app.url(&format!("/v1/bookings/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    app.publish_payment_event(
        "payments.refund.succeeded",
        serde_json::json!({
            "refund_id": format!("{payment}.r1"), "payment_id": payment, "amount": 6000,
            "currency": "EUR", "customer_reference": "member-1", "occurred_at": "2026-12-07T10:00:00Z",
        }),
    )
    .await;
    let refunded = app
        .wait_for_state(&id, "refunded", Duration::from_secs(15))
        .await;
    assert_eq!(
        causes(&refunded),
        [
            "reserved:reserved",
            "confirmed:payment_succeeded",
            "cancelled:member_cancelled",
            "refunded:refund_succeeded"
        ]
    );
}

#[tokio::test]
async fn an_unpaid_hold_expires_by_its_dapr_job_and_a_late_success_is_refunded() {
    let world = World::start().await;
    // The hold is long enough for the second booker to be refused even on
    // a loaded machine (the payment is created through auth and payments
    // first, which took seconds in a cold CI run), and short enough for the
    // test: the deadline is asserted from the booking's history, not timed.
    let app = TestApp::spawn(&world, 8).await;
    let offering = app.create_offering(1).await;
    let offering_id = offering["id"].as_str().unwrap();
    let id = app.reserve(offering_id, "slow-payer").await;
    let full = app.book(offering_id, "second").await;
    assert_eq!(full.status(), 409, "the one place is held");
    let payment = app.payment_created(&id).await;

    // No polling of ours: the scheduler fires the job at the hold's end.
    let released = app
        .wait_for_state(&id, "released", Duration::from_secs(45))
        .await;
    assert_eq!(causes(&released).last().unwrap(), "released:hold_expired");
    assert_eq!(app.taken(offering_id).await, 0);
    assert!(
        app.command(&id, "cancel_payment").await.is_some(),
        "compensation recorded"
    );

    // The money arrives anyway: refunded in full, automatically, visibly.
    app.publish_payment_event("payments.payment.succeeded", payment_data(&payment, 12000))
        .await;
    let cancelled = app
        .wait_for_state(&id, "cancelled", Duration::from_secs(15))
        .await;
    assert_eq!(
        causes(&cancelled).last().unwrap(),
        "cancelled:late_payment_refunded"
    );
    assert_eq!(cancelled["refund_amount"], 12000);
    assert_eq!(app.command(&id, "refund").await.unwrap().0, Some(12000));
    assert_eq!(
        app.taken(offering_id).await,
        0,
        "the place is not taken again"
    );
    // The freed place can be booked by someone else.
    assert_eq!(app.book(offering_id, "third").await.status(), 201);
}

#[tokio::test]
async fn a_hold_deadline_survives_a_crash_of_bookings() {
    let world = World::start().await;
    let first = TestApp::spawn(&world, 6).await;
    let offering = first.create_offering(1).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let id = first.reserve(&offering_id, "crash").await;
    // bookings and its sidecar die (no graceful stop) with the hold running.
    drop(first);

    // A new instance on the same database and scheduler: the job fires to
    // it and the reservation is released; the pending calls resume.
    let second = TestApp::spawn(&world, 6).await;
    let released = second
        .wait_for_state(&id, "released", Duration::from_secs(40))
        .await;
    assert_eq!(causes(&released).last().unwrap(), "released:hold_expired");
    assert_eq!(second.taken(&offering_id).await, 0);
}

#[tokio::test]
async fn an_organiser_cancellation_refunds_every_paid_booking_and_releases_the_rest() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(5).await;
    let offering_id = offering["id"].as_str().unwrap();
    let mut paid = Vec::new();
    for i in 0..3 {
        let id = app.reserve(offering_id, &format!("paid-{i}")).await;
        let payment = app.payment_created(&id).await;
        app.publish_payment_event("payments.payment.succeeded", payment_data(&payment, 12000))
            .await;
        paid.push(id);
    }
    for id in &paid {
        app.wait_for_state(id, "confirmed", Duration::from_secs(15))
            .await;
    }
    let open = app.reserve(offering_id, "unpaid").await;

    let res = app
        .http
        .post(app.app.url(&format!("/v1/offerings/{offering_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    for id in &paid {
        let booking = app
            .wait_for_state(id, "cancelled", Duration::from_secs(30))
            .await;
        assert_eq!(
            booking["refund_amount"], 12000,
            "organiser: everything back"
        );
        assert_eq!(app.command(id, "refund").await.unwrap().0, Some(12000));
    }
    app.wait_for_state(&open, "released", Duration::from_secs(30))
        .await;
    assert_eq!(app.taken(offering_id).await, 0);
    // Closed for new bookings.
    assert_eq!(app.book(offering_id, "late").await.status(), 409);
}

#[tokio::test]
async fn a_deadline_fired_early_changes_nothing_and_is_set_again() {
    let world = World::start().await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(1).await;
    let id = app.reserve(offering["id"].as_str().unwrap(), "early").await;
    let job = format!("{}/v1.0/jobs/booking-hold-{id}", app.daprd.http_base());
    // The sidecar's API needs its token; the app's job route the app token.
    let http = app.daprd.api_client().clone();
    http.delete(&job).send().await.unwrap();
    // What the sidecar delivers when the job fires, ahead of the hold's end.
    let fired = reqwest::Client::new()
        .post(app.app.url(&format!("/job/booking-hold-{id}")))
        .header("dapr-api-token", &app.daprd.options.app_token)
        .json(&serde_json::json!({ "booking_id": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(fired.status(), 200);
    assert_eq!(app.booking(&id).await["state"], "reserved");
    let scheduled = http.get(&job).send().await.unwrap();
    assert_eq!(scheduled.status(), 200, "the hold's job is scheduled again");
    let body: Value = scheduled.json().await.unwrap();
    assert!(body["dueTime"].is_string(), "{body}");
}
