//! The crash matrix (issue #15): bookings and its sidecar die without a
//! graceful stop after each step of the saga, payments' events arrive while
//! they are down (and again, as a redelivery), and a new instance on the
//! same database, Redis and scheduler resumes where the saga was: each
//! fact applied once, each compensation decided once (and its call still
//! pending until payments answers). After each scenario a real bookkeeping,
//! fed by the same events through its own sidecar, is audited against the
//! bookings' final states ([`crate::ledger`]).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, World, causes, payment_data};
use crate::ledger::Ledger;

/// A payments event as payments' outbox publishes it, with a fixed id so
/// that publishing it again is a redelivery.
fn payment_event(id: &str, event_type: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "payments", "type": event_type,
        "subject": data["payment_id"], "datacontenttype": "application/json", "data": data,
    })
}

#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
async fn commands(app: &TestApp, id: &str) -> Vec<(String, Option<i64>)> {
    let id = uuid::Uuid::parse_str(id).unwrap();
    sqlx::query_as(
        "SELECT command, amount FROM saga_commands WHERE booking_id = $1 ORDER BY command",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_crash_after_every_step_resumes_the_saga_and_decides_each_compensation_once() {
    let world = World::start().await;
    // payments' publisher (events reach the topic while bookings is down)
    // and bookkeeping, which stays up throughout.
    let ledger = Ledger::start(&world).await;
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(2).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let id = app.reserve(&offering_id, "crash-matrix").await;
    let payment = app.payment_created(&id).await;

    // Step 1 done (reserved). Crash; the payment succeeds meanwhile, and
    // its event is delivered twice.
    drop(app);
    let succeeded = payment_event(
        "evt-succeeded",
        "payments.payment.succeeded",
        payment_data(&payment, 12000),
    );
    for _ in 0..2 {
        ledger.publish(&succeeded).await;
    }
    let app = TestApp::spawn(&world, 900).await;
    app.wait_for_state(&id, "confirmed", Duration::from_secs(30))
        .await;

    // Step 2 done (confirmed). Crash and come back: nothing moves.
    drop(app);
    let app = TestApp::spawn(&world, 900).await;
    assert_eq!(app.booking(&id).await["state"], "confirmed");
    assert_eq!(app.taken(&offering_id).await, 1);

    // Step 3: the member cancels (50 % back). Crash right after, before
    // payments could refund; the old success is redelivered meanwhile.
    let res = app
        .http
        .post(app.app.url(&format!("/v1/bookings/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(app);
    ledger.publish(&succeeded).await;
    let app = TestApp::spawn(&world, 900).await;
    // The refund is still to be made (payments is not here), decided once.
    let cancelled = app.booking(&id).await;
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    assert_eq!(app.taken(&offering_id).await, 0, "the place went back once");

    // Step 4: payments makes the refund bookings asked for, and it succeeds
    // while bookings is down (twice).
    drop(app);
    let bookings = world.db.pool().await.unwrap();
    let refunded = ledger.refund_event(&bookings, &id).await;
    for _ in 0..2 {
        ledger.publish(&refunded).await;
    }
    let app = TestApp::spawn(&world, 900).await;
    let done = app
        .wait_for_state(&id, "refunded", Duration::from_secs(30))
        .await;
    assert_eq!(
        causes(&done),
        [
            "reserved:reserved",
            "confirmed:payment_succeeded",
            "cancelled:member_cancelled",
            "refunded:refund_succeeded"
        ],
        "every fact applied once across four crashes"
    );
    let decided = commands(&app, &id).await;
    assert_eq!(
        decided
            .iter()
            .filter(|(c, _)| c == "refund")
            .map(|(_, a)| *a)
            .collect::<Vec<_>>(),
        [Some(6000)],
        "one refund, of the policy's amount: {decided:?}"
    );
    assert_eq!(app.taken(&offering_id).await, 0);
    // One payment of 120.00 and one reversal of 60.00 in the books.
    ledger.audit(&app.pool).await;
}

#[tokio::test]
async fn a_late_success_delivered_across_a_crash_is_refunded_once() {
    let world = World::start().await;
    let ledger = Ledger::start(&world).await;
    let app = TestApp::spawn(&world, 3).await;
    let offering = app.create_offering(1).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    let id = app.reserve(&offering_id, "late").await;
    let payment = app.payment_created(&id).await;
    app.wait_for_state(&id, "released", Duration::from_secs(30))
        .await;

    // Released (hold expired). Crash; the payment still succeeds, twice.
    drop(app);
    let late = payment_event(
        "evt-late",
        "payments.payment.succeeded",
        payment_data(&payment, 12000),
    );
    for _ in 0..2 {
        ledger.publish(&late).await;
    }
    let app = TestApp::spawn(&world, 3).await;
    let cancelled = app
        .wait_for_state(&id, "cancelled", Duration::from_secs(30))
        .await;
    assert_eq!(
        causes(&cancelled),
        [
            "reserved:reserved",
            "released:hold_expired",
            "cancelled:late_payment_refunded"
        ]
    );
    assert_eq!(cancelled["refund_amount"], 12000);
    let decided = commands(&app, &id).await;
    assert!(
        decided.contains(&("refund".to_owned(), Some(12000))),
        "{decided:?}"
    );
    assert_eq!(
        decided.iter().filter(|(c, _)| c == "refund").count(),
        1,
        "{decided:?}"
    );
    // The place stays free: a late payment never takes it back.
    assert_eq!(app.taken(&offering_id).await, 0);

    // payments refunds it; the ledger shows the money in and out once.
    ledger
        .publish(&ledger.refund_event(&app.pool, &id).await)
        .await;
    app.wait_for_state(&id, "refunded", Duration::from_secs(30))
        .await;
    ledger.audit(&app.pool).await;
}

#[tokio::test]
async fn an_organiser_cancellation_crashed_halfway_is_finished_by_the_next_instance_once() {
    let world = World::start().await;
    let ledger = Ledger::start(&world).await;
    let bookings = world.db.pool().await.unwrap();
    let app = TestApp::spawn(&world, 900).await;
    let offering = app.create_offering(5).await;
    let offering_id = offering["id"].as_str().unwrap().to_owned();
    for i in 0..4 {
        let res = app.book(&offering_id, &format!("paid-{i}")).await;
        assert_eq!(res.status(), 201);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let payment = app.payment_created(&id).await;
        ledger
            .publish(&payment_event(
                &format!("evt-paid-{i}"),
                "payments.payment.succeeded",
                payment_data(&payment, 12000),
            ))
            .await;
        app.wait_for_state(&id, "confirmed", Duration::from_secs(30))
            .await;
    }
    assert_eq!(app.book(&offering_id, "unpaid").await.status(), 201);
    // The batch takes the bookings in id order, each in its own
    // transaction; a lock on the third stops it there, two done.
    let order: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, state FROM bookings WHERE offering_id = $1::uuid ORDER BY id")
            .bind(&offering_id)
            .fetch_all(&bookings)
            .await
            .unwrap();
    assert_eq!(order.len(), 5);
    let mut blocker = platform_db::begin(&bookings).await.unwrap();
    sqlx::query("SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE")
        .bind(order[2].0)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let res = app
        .http
        .post(app.app.url(&format!("/v1/offerings/{offering_id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let after = |state: &str| {
        if state == "confirmed" {
            "cancelled"
        } else {
            "released"
        }
    };
    for (id, state) in &order[..2] {
        app.wait_for_state(&id.to_string(), after(state), Duration::from_secs(30))
            .await;
    }
    platform_test_support::eventually(
        Duration::from_secs(30),
        "the batch to wait for the third booking",
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&bookings)
            .await
            .ok()?;
            (waiting > 0).then_some(())
        },
    )
    .await
    .unwrap();

    // Crash halfway: bookings and its sidecar die, and with the process its
    // database connections (the batch's open transaction on the third
    // booking among them).
    drop(app);
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut *blocker)
    .await
    .unwrap();
    blocker.rollback().await.unwrap();
    for (id, _) in &order[2..] {
        let state: String = sqlx::query_scalar("SELECT state FROM bookings WHERE id = $1")
            .bind(id)
            .fetch_one(&bookings)
            .await
            .unwrap();
        assert!(
            state == "confirmed" || state == "reserved",
            "not yet cancelled before the crash: {id} is {state}"
        );
    }

    // The batch's job fires again, to the next instance, which cancels the
    // rest; the first two are not cancelled (nor refunded) twice.
    let app = TestApp::spawn(&world, 900).await;
    let mut paid = Vec::new();
    for (id, state) in &order {
        let id = id.to_string();
        let booking = app
            .wait_for_state(&id, after(state), Duration::from_secs(60))
            .await;
        let refunds: Vec<_> = commands(&app, &id)
            .await
            .into_iter()
            .filter(|(c, _)| c == "refund")
            .collect();
        if state == "confirmed" {
            assert_eq!(booking["refund_amount"], 12000, "organiser: all back");
            assert_eq!(refunds, [("refund".to_owned(), Some(12000))], "{id}");
            paid.push(id);
        } else {
            assert!(refunds.is_empty(), "{id}: {refunds:?}");
        }
    }
    assert_eq!(paid.len(), 4);
    assert_eq!(app.taken(&offering_id).await, 0);

    // payments makes the four refunds; the ledger books each once.
    for id in &paid {
        ledger
            .publish(&ledger.refund_event(&app.pool, id).await)
            .await;
    }
    for id in &paid {
        app.wait_for_state(id, "refunded", Duration::from_secs(30))
            .await;
    }
    ledger.audit(&app.pool).await;
}
