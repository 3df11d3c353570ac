//! The path a customer sees, across services: payments confirms a payment
//! with the PSP sandbox and publishes `payments.payment.succeeded` through
//! its outbox; communication's sidecar delivers it to communication's
//! subscription, which renders the receipt in the customer's language and
//! sends it through its pluggable SMTP binding to the SMTP catcher. Real
//! sidecars, real brokers, both services' own event code: a change to the
//! event's shape on either side fails here.

use std::time::Duration;

use platform_test_support::{
    DaprdOptions, PspSandbox, SmtpCatcher, TestDatabase, TestEnv, TestIssuer, authorized_client,
    eventually, free_port, json_answer, start_with_options,
};
use platform_tests::{source, start_payments};
use serde_json::json;

#[tokio::test]
async fn a_confirmed_payment_emails_its_receipt_in_the_customers_language() {
    let env = TestEnv::start().await.unwrap();
    let issuer = TestIssuer::start().await.unwrap();
    let catcher = SmtpCatcher::start(env.dir()).await.unwrap();

    // communication, its database, its sidecar and the sidecar's SMTP binding.
    let mut comm = source("communication")
        .load::<communication::settings::Settings>()
        .unwrap();
    let _comm_db = TestDatabase::create_in_place(&mut comm.database)
        .await
        .unwrap();
    comm.server.port = 0;
    comm.providers.receipts_base_url = String::new();
    issuer.apply_to(&mut comm.auth);
    let sockets = env.dir().join("sockets");
    let _binding = smtp_mime_binding::RunningBinding::spawn(&sockets)
        .await
        .unwrap();
    let nowhere = format!("http://127.0.0.1:{}", free_port().unwrap());
    let mut comm_dapr = DaprdOptions::new("communication").unwrap();
    comm_dapr.env = vec![
        ("COMMUNICATION_SMTP_HOST".into(), "127.0.0.1".into()),
        (
            "COMMUNICATION_SMTP_PORT".into(),
            catcher.smtp_port().to_string(),
        ),
        ("COMMUNICATION_SMS_PRIMARY_URL".into(), nowhere.clone()),
        ("COMMUNICATION_SMS_SECONDARY_URL".into(), nowhere.clone()),
        ("COMMUNICATION_PUSH_URL".into(), nowhere),
        (
            "DAPR_COMPONENTS_SOCKETS_FOLDER".into(),
            sockets.display().to_string(),
        ),
    ];
    let (comm_app, comm_daprd) = start_with_options(&env, comm_dapr, |dapr| {
        dapr.apply_to(&mut comm.dapr);
        async move { Ok(communication::startup::build(comm).await?) }
    })
    .await
    .unwrap();

    // payments, its state database, its sidecar and the PSP sandbox.
    let psp = PspSandbox::start(None).await.unwrap();
    let endpoint = tempfile::tempdir().unwrap();
    psp.write_http_endpoint(endpoint.path(), "psp-test")
        .unwrap();
    let payments = start_payments(&env, &issuer, |pay, pay_dapr| {
        pay_dapr.extra_resources.push(endpoint.path().to_owned());
        pay.provider.endpoint = "psp-test".into();
        pay.provider.webhook_secret = psp.webhook_secret().to_owned().into();
    })
    .await
    .unwrap();
    let (pay_app, pay_daprd) = (&payments.app, &payments.daprd);
    comm_app.wait_ready(Duration::from_secs(30)).await.unwrap();
    pay_app.wait_ready(Duration::from_secs(30)).await.unwrap();
    psp.set_webhook_url(Some(&pay_app.url("/v1/webhooks/psp")))
        .await
        .unwrap();

    // The customer is known to communication, in German.
    let comm_http = authorized_client(&issuer.token(
        "communication",
        &["communication:read", "communication:write"],
    ))
    .unwrap();
    let put = comm_http
        .put(comm_app.url("/v1/recipients/cus_e2e"))
        .json(&json!({"email": "erika@example.test", "locale": "de"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    // A payment of 12.50 EUR, confirmed with the sandbox's good test card.
    let pay_http =
        authorized_client(&issuer.token("payments", &["payments:read", "payments:write"])).unwrap();
    let created = json_answer(
        pay_http
            .post(pay_app.url("/v1/payments"))
            .header("Idempotency-Key", "e2e-create")
            .json(&json!({"amount": 1250, "currency": "EUR", "customer_reference": "cus_e2e"})),
    )
    .await
    .unwrap();
    let payment_id = created["id"].as_str().unwrap().to_owned();
    let confirmed = json_answer(
        pay_http
            .post(pay_app.url(&format!("/v1/payments/{payment_id}/confirm")))
            .header("Idempotency-Key", "e2e-confirm")
            .json(&json!({"card_number": "4242424242424242"})),
    )
    .await
    .unwrap();
    assert_eq!(confirmed["status"], "succeeded", "{confirmed}");

    let mails = eventually(Duration::from_secs(45), "the receipt email", || async {
        let mails = catcher.messages("erika@example.test").await.ok()?;
        (!mails.is_empty()).then_some(mails)
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}\npayments sidecar:\n{}\ncommunication sidecar:\n{}",
            pay_daprd.log_tail(20),
            comm_daprd.log_tail(30)
        )
    });

    let mail = &mails[0];
    assert_eq!(
        mail["subject"], "Ihre Zahlung über 12,50 EUR ist eingegangen",
        "{mail}"
    );
    let text = mail["text"].as_str().unwrap_or_default();
    assert!(text.contains(&payment_id), "{text}");
    assert!(
        mail["html"]
            .as_str()
            .unwrap_or_default()
            .contains(&payment_id),
        "{mail}"
    );
    let notification_id = mail["headers"]["X-Notification-Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let notification =
        json_answer(comm_http.get(comm_app.url(&format!("/v1/notifications/{notification_id}"))))
            .await
            .unwrap();
    assert_eq!(notification["status"], "sent", "{notification}");
    assert_eq!(
        notification["template"], "payment_receipt",
        "{notification}"
    );

    // One receipt, even after the PSP's webhooks for the same payment and
    // the outbox's redelivery window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        catcher.messages("erika@example.test").await.unwrap().len(),
        1
    );
}
