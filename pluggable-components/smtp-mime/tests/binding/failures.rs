use platform_test_support::TestEnv;
use serde_json::json;

use crate::helpers::{TestBinding, only_message, start_sidecar};

#[tokio::test]
async fn smtp_refusals_are_reported_and_the_pool_keeps_working() {
    let t = TestBinding::start().await;
    // A first send leaves a session in the pool, which the refusals reuse.
    let warm = t
        .send(
            json!({"text": "warm"}),
            json!({"emailTo": "warm@example.test"}),
        )
        .await;
    assert_eq!(warm.meta("outcome"), "accepted", "{warm:?}");

    t.catcher.reject_next(1, 550).await.unwrap();
    let permanent = t
        .send(
            json!({"text": "a"}),
            json!({"emailTo": "refused@example.test"}),
        )
        .await;
    t.catcher.reject_next_at_data(1, 451).await.unwrap();
    let transient = t
        .send(
            json!({"text": "b"}),
            json!({"emailTo": "later@example.test"}),
        )
        .await;
    let next = t
        .send(
            json!({"text": "c"}),
            json!({"emailTo": "next@example.test"}),
        )
        .await;

    assert_eq!(permanent.status, 200, "{permanent:?}");
    assert_eq!(permanent.meta("outcome"), "rejected");
    assert_eq!(permanent.meta("smtpCode"), "550");
    assert!(
        permanent.meta("smtpMessage").contains("Rejected"),
        "{permanent:?}"
    );
    assert!(!permanent.meta("messageId").is_empty(), "{permanent:?}");
    assert_eq!(transient.status, 200, "{transient:?}");
    assert_eq!(transient.meta("outcome"), "rejected");
    assert_eq!(transient.meta("smtpCode"), "451");
    assert_eq!(next.meta("outcome"), "accepted", "{next:?}");
    assert_eq!(next.meta("smtpCode"), "250");

    assert!(
        t.catcher
            .messages("refused@example.test")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        t.catcher
            .messages("later@example.test")
            .await
            .unwrap()
            .is_empty()
    );
    only_message(&t.catcher, "next@example.test").await;
}

#[tokio::test]
async fn invalid_requests_are_refused_and_nothing_is_sent() {
    let t = TestBinding::start().await;
    let to = json!({"emailTo": "ada@example.test"});
    let cases = [
        (json!("not json"), to.clone(), "JSON object"),
        (json!([1, 2]), to.clone(), "data must be a JSON object"),
        (json!({}), to.clone(), "no body"),
        (json!({"text": "x"}), json!({}), "no recipient"),
        (
            json!({"text": "x"}),
            json!({"emailTo": "not-an-address"}),
            "emailTo",
        ),
        (
            json!({"text": "x", "headers": {"Bcc": "spy@example.test"}}),
            to.clone(),
            "set by the binding",
        ),
        (
            json!({"text": "x", "headers": {"X-Tag": "a\r\nBcc: spy@example.test"}}),
            to.clone(),
            "line break",
        ),
        (
            json!({"text": "x"}),
            json!({"emailTo": "ada@example.test", "emailCC": ""}),
            "emailCC: is given but holds no address",
        ),
        (
            json!({"text": "x"}),
            json!({"emailTo": "ada@example.test", "emailFrom": " "}),
            "emailFrom: is given but empty",
        ),
        (
            json!({"text": "x"}),
            json!({"emailTo": "ada@example.test", "EMAILTO": "eve@example.test"}),
            "emailTo: given several times in different letter case",
        ),
        (
            json!({"text": "a\r.\r\nRSET"}),
            to.clone(),
            "text: contains a CR not followed by LF",
        ),
        (
            json!({"text": "x", "headers": {"Received": "from evil"}}),
            to.clone(),
            "set by the binding",
        ),
    ];
    for (data, metadata, expected) in cases {
        let answer = t.send(data.clone(), metadata).await;
        let message = answer.error_message();
        assert_eq!(answer.status, 500, "{data}: {answer:?}");
        assert!(
            message.starts_with(
                "error invoking output binding email-mime: rpc error: code = InvalidArgument desc = smtp-mime: invalid request: "
            ) && message.contains(expected),
            "{data}: {message}"
        );
    }
    let delete = t.invoke("delete", json!({"text": "x"}), to).await;
    assert_eq!(delete.status, 500, "{delete:?}");
    // daprd refuses an operation the component did not list (ListOperations)
    // without calling it.
    assert!(
        delete
            .error_message()
            .contains("does not support operation delete"),
        "{delete:?}"
    );

    assert_eq!(t.catcher.count().await.unwrap(), 0);
    assert_eq!(
        t.catcher.stats().await.unwrap()["received"].as_u64(),
        Some(0)
    );
}

#[tokio::test]
async fn without_an_smtp_server_the_binding_is_unavailable() {
    let mut t = TestBinding::start().await;
    t.catcher.stop().await.unwrap();

    let answer = t
        .send(json!({"text": "x"}), json!({"emailTo": "ada@example.test"}))
        .await;

    assert_eq!(answer.status, 500, "{answer:?}");
    let message = answer.error_message();
    // What an app reads from daprd (HTTP `message`, or the gRPC status
    // message of InvokeBinding, code Internal).
    assert!(
        message.starts_with(
            "error invoking output binding email-mime: rpc error: code = Unavailable desc = smtp-mime: unavailable: "
        ),
        "{message}"
    );
    assert!(answer.meta("outcome").is_empty(), "{answer:?}");
}

#[tokio::test]
async fn bad_component_metadata_keeps_daprd_from_starting() {
    let env = TestEnv::start().await.unwrap();

    let error = start_sidecar(
        &env,
        &[
            ("host", "127.0.0.1"),
            ("port", "not-a-port"),
            ("tls", "none"),
        ],
    )
    .await
    .unwrap_err()
    .to_string();

    assert!(
        error.contains("smtp-mime: invalid component metadata: port"),
        "{error}"
    );
}
