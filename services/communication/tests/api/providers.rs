//! SMS and push through the HTTP bindings to the notification sandbox:
//! failover, retries of retriable failures, terminal failures to the
//! dead-letter topic, status events.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{alert, with_notify};

const PHONE: &str = "+4915112345678";

#[tokio::test]
async fn sms_fails_over_from_the_primary_to_the_secondary_provider() {
    let (notify, app) = with_notify(|_| {}).await;
    notify
        .configure("sms-primary", json!({"mode": "fail", "fail_status": 503}))
        .await
        .unwrap();

    let created = app.create(&alert("sms", ("phone", PHONE))).await;
    let id = created["id"].as_str().unwrap();
    let sent = app.wait_status(id, "sent").await;

    assert_eq!(sent["provider"], "communication-sms-secondary");
    assert_eq!(sent["attempts"], 1, "failover happens within the attempt");
    let delivered = notify.messages("sms-secondary", PHONE).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["reference"], id);
    assert!(
        delivered[0]["body"]
            .as_str()
            .unwrap()
            .contains("new sign-in")
    );
    assert!(
        notify
            .messages("sms-primary", PHONE)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_provider_failing_twice_then_succeeding_delivers_exactly_once() {
    let (notify, app) = with_notify(|_| {}).await;
    notify
        .configure("push", json!({"fail_next": 2, "fail_status": 503}))
        .await
        .unwrap();

    let created = app.create(&alert("push", ("push_token", "device-1"))).await;
    let sent = app
        .wait_status(created["id"].as_str().unwrap(), "sent")
        .await;

    assert_eq!(sent["attempts"], 3, "{sent}");
    assert_eq!(notify.messages("push", "device-1").await.unwrap().len(), 1);
    let stats = notify.stats().await.unwrap();
    assert_eq!(stats["push"]["accepted"], 1, "{stats}");
    assert_eq!(stats["push"]["rejected"], 2, "{stats}");
    let statuses: Vec<&str> = sent["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "sending", "sent"]);
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried_and_goes_to_the_dead_letter_topic_as_failed() {
    let (notify, app) = with_notify(|_| {}).await;

    let created = app.create(&alert("sms", ("phone", "+15005550001"))).await;
    let id = created["id"].as_str().unwrap();
    let failed = app.wait_status(id, "failed").await;

    assert_eq!(failed["attempts"], 1, "a 4xx is not retried: {failed}");
    assert!(
        failed["status_reason"]
            .as_str()
            .unwrap()
            .contains("invalid_recipient"),
        "{failed}"
    );
    let stats = notify.stats().await.unwrap();
    assert_eq!(stats["sms-primary"]["rejected"], 1, "{stats}");
    assert_eq!(
        stats["sms-secondary"]["rejected"], 0,
        "no failover for a bad number: {stats}"
    );
    let letters = app.wait_stream("communication.sends.deadletter", 1).await;
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0]["data"]["notification_id"], id, "{}", letters[0]);
    assert!(
        letters[0]["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_recipient")
    );
}

#[tokio::test]
async fn retriable_failures_are_bounded_then_failed_and_dead_lettered() {
    // Given up at the end of the first round: the notification is older
    // than give_up_after_secs at once.
    let (notify, app) = with_notify(|s| {
        s.sending.max_attempts = 2;
        s.sending.give_up_after_secs = 0;
    })
    .await;
    notify
        .configure("push", json!({"mode": "throttle"}))
        .await
        .unwrap();

    let created = app.create(&alert("push", ("push_token", "device-2"))).await;
    let failed = app
        .wait_status(created["id"].as_str().unwrap(), "failed")
        .await;

    assert_eq!(failed["attempts"], 2, "{failed}");
    assert!(
        failed["status_reason"].as_str().unwrap().contains("429"),
        "{failed}"
    );
    assert!(notify.all_messages("push").await.unwrap().is_empty());
    app.wait_stream("communication.sends.deadletter", 1).await;
}

#[tokio::test]
async fn a_provider_down_for_longer_than_a_round_of_attempts_loses_nothing() {
    // Issue 12's smtp-down-60s: a round of attempts (max_attempts with
    // Dapr's back-off) lasts seconds, a provider outage minutes. The
    // notification is deferred, tried again by the sweeper, and sent once
    // the provider is back; it is never failed meanwhile.
    let (notify, app) = with_notify(|s| {
        s.sending.max_attempts = 2;
        s.sending.requeue_after_secs = 1;
        s.sending.sweep_interval_ms = 200;
    })
    .await;
    notify
        .configure("push", json!({"mode": "fail", "fail_status": 503}))
        .await
        .unwrap();
    let created = app.create(&alert("push", ("push_token", "device-5"))).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/notifications/{id}");
    let waiting: Value = platform_test_support::eventually(
        std::time::Duration::from_secs(60),
        "a third round of attempts",
        || async {
            let body: Value = app.get(&path).await.json().await.ok()?;
            (body["status"] == "failed" || body["attempts"].as_i64()? >= 5).then_some(body)
        },
    )
    .await
    .unwrap();
    assert_eq!(waiting["status"], "sending", "{waiting}");
    notify
        .configure("push", json!({"mode": "accept"}))
        .await
        .unwrap();

    let sent = app.wait_status(id, "sent").await;
    assert!(sent["attempts"].as_i64().unwrap() >= 5, "{sent}");
    assert_eq!(notify.messages("push", "device-5").await.unwrap().len(), 1);
    let failed = app.stream("communication.sends.deadletter").await;
    assert!(
        failed
            .iter()
            .all(|m| m["type"] != "communication.send.failed"),
        "nothing was failed: {failed:#?}"
    );
}

#[tokio::test]
async fn every_status_change_is_published_as_an_event() {
    let (_notify, app) = with_notify(|_| {}).await;
    let created = app.create(&alert("push", ("push_token", "device-3"))).await;
    let id = created["id"].as_str().unwrap();
    app.wait_status(id, "sent").await;

    let events = app.wait_stream("communication", 3).await;
    let mut statuses: Vec<(i64, String)> = events
        .iter()
        .filter(|e| e["type"] == "communication.notification.status_changed")
        .filter(|e| e["data"]["notification_id"] == id)
        .map(|e| {
            (
                e["data"]["sequence"].as_i64().unwrap(),
                e["data"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    let statuses: Vec<&str> = statuses.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(statuses, ["queued", "sending", "sent"]);
    let sent = events
        .iter()
        .find(|e| e["data"]["status"] == "sent")
        .unwrap();
    assert_eq!(sent["id"], format!("{id}-sent"));
    assert_eq!(sent["source"], "communication");
}

#[tokio::test]
async fn a_job_dapr_gives_up_on_is_queued_again_while_attempts_remain() {
    // More attempts than Dapr's redeliveries (1 + 4): Dapr dead-letters the
    // job after 5, and the service queues it again instead of failing it.
    let (notify, app) = with_notify(|s| s.sending.max_attempts = 12).await;
    notify
        .configure("push", json!({"mode": "fail", "fail_status": 503}))
        .await
        .unwrap();
    let created = app.create(&alert("push", ("push_token", "device-4"))).await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/v1/notifications/{id}");
    platform_test_support::eventually(
        std::time::Duration::from_secs(60),
        "a sixth attempt, after Dapr gave up on the job",
        || async {
            let body: Value = app.get(&path).await.json().await.ok()?;
            (body["attempts"].as_i64()? >= 6).then_some(())
        },
    )
    .await
    .unwrap();
    notify
        .configure("push", json!({"mode": "accept"}))
        .await
        .unwrap();

    let sent = app.wait_status(id, "sent").await;
    assert!(sent["attempts"].as_i64().unwrap() >= 6, "{sent}");
    assert_eq!(notify.messages("push", "device-4").await.unwrap().len(), 1);
    let forwarded = app.stream("communication.sends.deadletter").await;
    assert!(
        forwarded
            .iter()
            .any(|m| m["type"] == "communication.send.requested"),
        "Dapr dead-lettered the job: {forwarded:#?}"
    );
}

/// Issue 12's database-restart doubled a receipt: the message went out,
/// the database went away before its outcome was recorded, the worker gave
/// up recording after ~3 s, and once the claim was stale the sweeper sent
/// it again. Now the record is kept trying until just before the claim goes
/// stale: a database away for longer than the worker's own tries but back
/// in time ends with the message recorded and sent once.
#[tokio::test]
async fn a_message_sent_while_the_database_goes_away_is_recorded_when_it_is_back_and_not_sent_again()
 {
    const STALE_AFTER_SECS: i64 = 12;
    let (notify, app) = with_notify(|s| {
        s.sending.route_timeout_ms = 8_000;
        s.sending.stale_after_secs = STALE_AFTER_SECS;
        s.sending.sweep_interval_ms = 500;
    })
    .await;
    // Accepted at once, answered 1.5 s later: the database goes away while
    // the message is out and its answer on the way.
    notify
        .configure("push", json!({"mode": "delay", "delay_ms": 1500}))
        .await
        .unwrap();

    let created = app
        .create(&alert("push", ("push_token", "device-db")))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    platform_test_support::eventually(
        Duration::from_secs(30),
        "the push at the provider",
        || async {
            let sent = notify.messages("push", "device-db").await.ok()?;
            (!sent.is_empty()).then_some(())
        },
    )
    .await
    .unwrap();
    app.db.outage().await.unwrap();
    // Longer than the worker's tries within the request (~3 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    app.db.back().await.unwrap();

    let sent = app.wait_status(&id, "sent").await;
    assert_eq!(sent["attempts"], 1, "{sent}");
    // Past the moment the claim would have gone stale and the sweeper run.
    tokio::time::sleep(Duration::from_secs(STALE_AFTER_SECS.unsigned_abs() + 3)).await;
    let delivered = notify.messages("push", "device-db").await.unwrap();
    assert_eq!(delivered.len(), 1, "sent again: {delivered:?}");
    let after = app.wait_status(&id, "sent").await;
    assert_eq!(after["attempts"], 1, "{after}");
}
