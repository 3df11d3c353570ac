//! Email through the sidecar's SMTP binding (`bindings.smtp-mime`) to a real
//! SMTP catcher, read back over the catcher's HTTP API.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{new_id, payment_succeeded, with_catcher};

#[tokio::test]
async fn duplicate_payment_events_send_exactly_one_email() {
    let (catcher, app) = with_catcher(|_| {}).await;
    app.put_recipient("cust-1", json!({"email": "anna@example.com"}))
        .await;
    let event_id = new_id("evt");
    for _ in 0..3 {
        app.publish_payment_succeeded(&event_id, "pay_1", "cust-1", 1234)
            .await;
    }
    let all = app.wait_notifications(1).await;
    let sent = app.wait_status(&all[0].0, "sent").await;
    app.wait_delivered("payments", 3.0).await;

    let mails = catcher.messages("anna@example.com").await.unwrap();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(
        mails[0]["subject"],
        "Your payment of 12.34 EUR was received"
    );
    let html = mails[0]["html"].as_str().unwrap_or_default();
    assert!(html.contains("pay_1"), "{}", mails[0]);
    assert!(
        html.contains(sent["id"].as_str().unwrap()),
        "the notification id is in the email: {html}"
    );
    let id = sent["id"].as_str().unwrap();
    let text = mails[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("pay_1") && !text.contains('<'),
        "a plain-text part next to the HTML one: {}",
        mails[0]
    );
    let headers = &mails[0]["headers"];
    assert!(
        headers["Content-Type"]
            .as_str()
            .unwrap_or_default()
            .starts_with("multipart/alternative"),
        "{headers}"
    );
    assert_eq!(
        headers["Message-ID"],
        format!("<{id}@communication.lisasports.example>"),
        "{headers}"
    );
    assert_eq!(headers["X-Notification-Id"], id, "{headers}");
    assert_eq!(app.notifications().await.len(), 1);
    assert_eq!(catcher.count().await.unwrap(), 1);
}

#[tokio::test]
async fn the_same_template_is_sent_in_each_recipients_language() {
    let (catcher, app) = with_catcher(|_| {}).await;
    app.put_recipient(
        "en-1",
        json!({"email": "en@example.com", "locale": "en-GB"}),
    )
    .await;
    app.put_recipient("de-1", json!({"email": "de@example.com", "locale": "de"}))
        .await;
    for customer in ["en-1", "de-1"] {
        app.publish_payment_succeeded(&new_id("evt"), "pay_2", customer, 4250)
            .await;
    }
    for (id, _, _) in app.wait_notifications(2).await {
        app.wait_status(&id, "sent").await;
    }

    let en = catcher.messages("en@example.com").await.unwrap();
    let de = catcher.messages("de@example.com").await.unwrap();
    assert_eq!(en[0]["subject"], "Your payment of 42.50 EUR was received");
    assert_eq!(
        de[0]["subject"],
        "Ihre Zahlung über 42,50 EUR ist eingegangen"
    );
    assert!(de[0]["html"].as_str().unwrap().contains("vielen Dank"));
}

#[tokio::test]
async fn a_ready_statement_is_emailed_with_its_download_link() {
    let (catcher, app) = with_catcher(|s| {
        s.links.statements_base_url = "https://api.lisasports.example/bookkeeping".into();
    })
    .await;
    let account = uuid::Uuid::new_v4().to_string();
    app.put_recipient(&account, json!({"email": "books@example.com"}))
        .await;
    let statement = uuid::Uuid::new_v4();
    app.publish_event(
        "bookkeeping",
        &format!("statement-ready-{statement}"),
        "bookkeeping.statement.ready",
        json!({
            "statement_id": statement, "account_id": account,
            "from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z",
            "format": "csv", "rows": 10, "bytes": 512,
            "download_path": format!("/v1/statements/{statement}/download"),
        }),
    )
    .await;
    let all = app.wait_notifications(1).await;
    app.wait_status(&all[0].0, "sent").await;

    let mails = catcher.messages("books@example.com").await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["subject"], "Your statement is ready");
    // MiniJinja escapes `/` in HTML as `&#x2f;` (valid in an attribute).
    let html = mails[0]["html"].as_str().unwrap().replace("&#x2f;", "/");
    assert!(
        html.contains(&format!(
            "https://api.lisasports.example/bookkeeping/v1/statements/{statement}/download"
        )),
        "{html}"
    );
    assert!(html.contains("2026-10-01 to 2026-11-01"), "{html}");
}

#[tokio::test]
async fn an_smtp_server_refusing_twice_then_accepting_delivers_one_email() {
    let (catcher, app) = with_catcher(|_| {}).await;
    catcher.reject_next(2, 451).await.unwrap();
    let body = json!({
        "recipient": {"id": "r1", "email": "retry@example.com"},
        "template": "security_alert", "category": "security",
        "data": {"event": "password changed"}, "channels": ["email"],
    });
    let created = app.create(&body).await;
    let sent = app
        .wait_status(created["id"].as_str().unwrap(), "sent")
        .await;

    assert_eq!(sent["attempts"], 3, "{sent}");
    assert_eq!(
        catcher.messages("retry@example.com").await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn an_smtp_permanent_rejection_fails_the_notification_without_retrying() {
    let (catcher, app) = with_catcher(|_| {}).await;
    catcher.reject_next(1, 550).await.unwrap();
    let body = json!({
        "recipient": {"id": "r1", "email": "gone@example.com"},
        "template": "security_alert", "category": "security",
        "data": {"event": "password changed"}, "channels": ["email"],
    });
    let created = app.create(&body).await;
    let failed = app
        .wait_status(created["id"].as_str().unwrap(), "failed")
        .await;

    assert_eq!(failed["attempts"], 1, "{failed}");
    assert!(
        failed["status_reason"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    let letters = app.wait_stream("communication.sends.deadletter", 1).await;
    assert_eq!(letters[0]["data"]["notification_id"], created["id"]);
    assert_eq!(catcher.count().await.unwrap(), 0);
}

#[tokio::test]
async fn an_opt_out_keeps_marketing_away_but_security_mail_gets_through() {
    let (catcher, app) = with_catcher(|_| {}).await;
    app.put_recipient("r1", json!({"email": "optout@example.com"}))
        .await;
    app.opt_out("r1", "email", &["marketing", "security"]).await;
    let promotion = json!({
        "recipient": {"id": "r1"}, "template": "promotion", "category": "marketing",
        "data": {"headline": "Sale", "offer": "Skis"},
    });
    let alert = json!({
        "recipient": {"id": "r1"}, "template": "security_alert", "category": "security",
        "data": {"event": "new sign-in"},
    });
    let suppressed = app.create(&promotion).await;
    let critical = app.create(&alert).await;
    app.wait_status(critical["id"].as_str().unwrap(), "sent")
        .await;

    assert_eq!(suppressed["status"], "not_sent");
    let mails = catcher.messages("optout@example.com").await.unwrap();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert_eq!(mails[0]["subject"], "Security alert: new sign-in");
}

#[tokio::test]
async fn concurrent_emails_each_reach_their_own_recipient() {
    let (catcher, app) = with_catcher(|_| {}).await;
    let ids: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let requests = ids.iter().map(|id| {
        let body = json!({
            "recipient": {"id": id, "email": format!("{id}@example.com")},
            "template": "promotion", "category": "news",
            "data": {"headline": format!("For {id}"), "offer": format!("Offer for {id}")},
        });
        let app = &app;
        async move { app.create(&body).await }
    });
    let created = futures::future::join_all(requests).await;
    for n in &created {
        app.wait_status(n["id"].as_str().unwrap(), "sent").await;
    }

    for id in &ids {
        let mails = catcher
            .messages(&format!("{id}@example.com"))
            .await
            .unwrap();
        assert_eq!(mails.len(), 1, "{id}: {mails:#?}");
        assert_eq!(mails[0]["subject"], format!("For {id}"), "{}", mails[0]);
        assert!(
            mails[0]["html"]
                .as_str()
                .unwrap()
                .contains(&format!("Offer for {id}"))
        );
    }
    assert_eq!(catcher.count().await.unwrap(), 40);
}

#[tokio::test]
async fn a_restart_mid_batch_loses_nothing_and_sends_nothing_twice() {
    // The restart while events are still arriving: the batch is mid-way
    // when the service stops (asserted below).
    // Short recovery timers: a job that Dapr gave up on while the service
    // was down is queued again after 10 s idle (a second job is harmless:
    // the claim lets one send through), and a claim cut off by the stop is
    // taken over after 20 s, far longer than one send takes here.
    let (catcher, mut app) = with_catcher(|s| {
        s.sending.requeue_after_secs = 10;
        s.sending.stale_after_secs = 20;
    })
    .await;
    const N: usize = 300;
    for i in 0..N {
        app.put_recipient(
            &format!("cust-{i}"),
            json!({"email": format!("m{i}@example.com")}),
        )
        .await;
    }
    // Published as payments (the only app pub/sub lets publish there),
    // through a sidecar that outlives communication's restart.
    let publisher = platform_test_support::Daprd::publisher(&app.env, "payments")
        .await
        .unwrap();
    let publish_url = format!("{}/v1.0/publish/pubsub/payments", publisher.http_base());
    let client = publisher.api_client().clone();
    let publishing = tokio::spawn(async move {
        for i in 0..N {
            let event = json!({
                "specversion": "1.0", "id": new_id("evt"), "source": "payments",
                "type": "payments.payment.succeeded", "datacontenttype": "application/json",
                "data": payment_succeeded(&format!("pay_{i}"), &format!("cust-{i}"), 100 + i as i64),
            });
            let res = client
                .post(&publish_url)
                .header("content-type", "application/cloudevents+json")
                .json(&event)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{}", res.status());
        }
    });
    platform_test_support::eventually(Duration::from_secs(30), "some emails", || async {
        (catcher.count().await.ok()? >= 5).then_some(())
    })
    .await
    .unwrap();

    app.restart().await;
    let at_restart = catcher.count().await.unwrap();
    publishing.await.unwrap();
    assert!(
        at_restart < N as u64,
        "the batch was done before the restart; nothing was tested"
    );

    let settled =
        platform_test_support::eventually(Duration::from_secs(180), "every email", || async {
            let all = app.notifications().await;
            (all.len() == N && all.iter().all(|(_, _, s)| s == "sent")).then_some(())
        })
        .await;
    if let Err(e) = settled {
        let all = app.notifications().await;
        let mut by_status = std::collections::BTreeMap::new();
        for (_, _, status) in &all {
            *by_status.entry(status.clone()).or_insert(0) += 1;
        }
        panic!(
            "{e}: {} of {N} notifications recorded, by status {by_status:?}",
            all.len()
        );
    }
    for i in 0..N {
        let mails = catcher
            .messages(&format!("m{i}@example.com"))
            .await
            .unwrap();
        assert_eq!(mails.len(), 1, "m{i}: {mails:#?}");
    }
    assert_eq!(catcher.count().await.unwrap(), N as u64);
    // Events whose delivery ran out of retries while the service was down
    // reached payments.deadletter and were re-driven from the parking lot
    // (docs/adr/0026, 0029): none is left parked.
    let mut conn = app.db.connect().await.unwrap();
    let parked: Vec<(String, String)> =
        sqlx::query_as("SELECT status, classification FROM parked_letters")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    eprintln!("parked letters (status, classification): {parked:?}");
    assert!(
        parked.iter().all(|(status, _)| status == "redriven"),
        "{parked:?}"
    );
}
