use std::collections::HashSet;

use serde_json::json;

use crate::helpers::{FROM, TestBinding, body, only_message};

#[tokio::test]
async fn text_and_html_arrive_as_alternatives_with_our_headers() {
    let t = TestBinding::start().await;

    let answer = t
        .send(
            json!({
                "text": "Court 3 is yours at 18:00.",
                "html": "<p>Court <b>3</b> is yours at 18:00.</p>",
                "headers": {
                    "Message-ID": "<booking-42@lisasports.test>",
                    "X-Notification-Id": "0190c2d4-7f3a-7000-8000-000000000042",
                    "List-Unsubscribe": "<https://lisasports.test/unsubscribe/42>"
                }
            }),
            json!({"emailTo": "ada@example.test", "subject": "Your booking – Court 3"}),
        )
        .await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.meta("outcome"), "accepted");
    assert_eq!(answer.meta("smtpCode"), "250");
    assert!(!answer.meta("smtpMessage").is_empty(), "{answer:?}");
    assert_eq!(answer.meta("messageId"), "<booking-42@lisasports.test>");
    assert!(answer.body.is_empty(), "{answer:?}");

    let mail = only_message(&t.catcher, "ada@example.test").await;
    assert_eq!(mail["from"], FROM);
    assert_eq!(mail["subject"], "Your booking – Court 3");
    assert_eq!(body(&mail, "text"), "Court 3 is yours at 18:00.");
    assert_eq!(
        body(&mail, "html"),
        "<p>Court <b>3</b> is yours at 18:00.</p>"
    );
    let headers = &mail["headers"];
    assert_eq!(headers["Message-ID"], "<booking-42@lisasports.test>");
    assert_eq!(
        headers["X-Notification-Id"],
        "0190c2d4-7f3a-7000-8000-000000000042"
    );
    assert_eq!(
        headers["List-Unsubscribe"],
        "<https://lisasports.test/unsubscribe/42>"
    );
    assert_eq!(headers["From"], "LISA Sports <no-reply@lisasports.test>");
    assert!(
        headers["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("multipart/alternative"),
        "{headers}"
    );
}

#[tokio::test]
async fn a_single_body_is_sent_alone_with_a_generated_message_id() {
    let t = TestBinding::start().await;

    let html = t
        .send(
            json!({"html": "<p>Only HTML</p>"}),
            json!({"emailTo": "html@example.test", "subject": "html", "priority": "1"}),
        )
        .await;
    let text = t
        .send(
            json!({"text": "Only text"}),
            json!({"emailTo": "text@example.test", "subject": "text"}),
        )
        .await;

    assert_eq!(html.meta("outcome"), "accepted", "{html:?}");
    assert_eq!(text.meta("outcome"), "accepted", "{text:?}");
    let mail = only_message(&t.catcher, "html@example.test").await;
    assert_eq!(body(&mail, "html"), "<p>Only HTML</p>");
    assert!(mail["text"].is_null(), "{mail}");
    assert_eq!(mail["headers"]["X-Priority"], "1");
    let id = html.meta("messageId");
    assert!(
        id.starts_with('<') && id.ends_with("@lisasports.test>"),
        "{id}"
    );
    assert_eq!(mail["headers"]["Message-ID"], id);

    let mail = only_message(&t.catcher, "text@example.test").await;
    assert_eq!(body(&mail, "text"), "Only text");
    assert!(mail["html"].is_null(), "{mail}");
    assert!(
        mail["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain"),
        "{mail}"
    );
    assert_ne!(text.meta("messageId"), id, "a new id per message");
}

#[tokio::test]
async fn concurrent_sends_each_reach_exactly_their_own_recipients() {
    let t = TestBinding::start().await;
    const SENDS: usize = 50;

    let answers = futures::future::join_all((0..SENDS).map(|i| {
        let t = &t;
        async move {
            let answer = t
                .send(
                    json!({"text": format!("message {i}")}),
                    json!({
                        "emailTo": format!("to-{i}@example.test"),
                        "emailCC": format!("cc-{i}@example.test"),
                        "emailBCC": format!("bcc-{i}@example.test"),
                        "subject": format!("subject {i}"),
                    }),
                )
                .await;
            (i, answer)
        }
    }))
    .await;

    for (i, answer) in &answers {
        assert_eq!(answer.meta("outcome"), "accepted", "{i}: {answer:?}");
    }
    let all = t.catcher.all_messages().await.unwrap();
    assert_eq!(all.len(), SENDS);
    let mut ids = HashSet::new();
    for mail in &all {
        let subject = mail["subject"].as_str().unwrap();
        let i: usize = subject.strip_prefix("subject ").unwrap().parse().unwrap();
        let envelope: Vec<&str> = mail["to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            envelope,
            [
                format!("to-{i}@example.test"),
                format!("cc-{i}@example.test"),
                format!("bcc-{i}@example.test")
            ],
            "{mail}"
        );
        assert_eq!(mail["headers"]["To"], format!("to-{i}@example.test"));
        assert_eq!(mail["headers"]["Cc"], format!("cc-{i}@example.test"));
        assert!(mail["headers"].get("Bcc").is_none(), "{mail}");
        assert_eq!(body(mail, "text"), format!("message {i}"));
        assert!(ids.insert(mail["headers"]["Message-ID"].to_string()));
    }
    // poolSize 4 (helpers.rs) bounds the sessions: 50 sends over at most 4.
    let sessions = t.catcher.stats().await.unwrap()["sessions"]
        .as_u64()
        .unwrap();
    assert!((1..=4).contains(&sessions), "{sessions} SMTP sessions");
}

#[tokio::test]
async fn sequential_sends_and_a_refusal_reuse_one_session() {
    let t = TestBinding::start().await;

    for i in 0..5 {
        let answer = t
            .send(
                json!({"text": format!("message {i}")}),
                json!({"emailTo": format!("seq-{i}@example.test"), "subject": "seq"}),
            )
            .await;
        assert_eq!(answer.meta("outcome"), "accepted", "{answer:?}");
    }
    // A refused transaction is reset (RSET), not a reason for a new session.
    t.catcher.reject_next(1, 550).await.unwrap();
    let refused = t
        .send(
            json!({"text": "refused"}),
            json!({"emailTo": "refused@example.test", "subject": "seq"}),
        )
        .await;
    assert_eq!(refused.meta("outcome"), "rejected", "{refused:?}");
    let after = t
        .send(
            json!({"text": "after"}),
            json!({"emailTo": "after@example.test", "subject": "seq"}),
        )
        .await;
    assert_eq!(after.meta("outcome"), "accepted", "{after:?}");

    let stats = t.catcher.stats().await.unwrap();
    assert_eq!(stats["received"], 6, "{stats}");
    assert_eq!(
        stats["sessions"], 1,
        "one SMTP session for every send: {stats}"
    );
}
