//! The README's bookings walk-through, as a test that keeps it true: against
//! the running platform (`make up`), everything through the edge gateway on
//! :8000, a member books a place, pays with the sandbox's test card
//! (through bookings, which owns the payment at payments), gets the
//! confirmation email in German (SMTP catcher's API on :8025), cancels
//! before the policy date, and sees the 50 % refund on the booking, the
//! "cancellation confirmed" and refund emails, and the refund booked in the
//! ledger.
//!
//! Needs the stack, so it is ignored by `cargo test`; `make
//! bookings-walkthrough` runs it inside the machine-wide stack lock:
//! `cargo test -p platform-tests --test bookings_walkthrough -- --ignored`.

#![expect(
    clippy::print_stdout,
    reason = "prints what the walk-through saw, for the person running it"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform_test_support::{authorized_client, eventually};
use serde_json::{Value, json};

const GATEWAY: &str = "http://127.0.0.1:8000";
const CATCHER: &str = "http://127.0.0.1:8025";
const ADMIN_SECRET: &str = "local-only-admin-secret";
/// What `bookkeeping` derives its system accounts' ids from
/// (services/bookkeeping/src/posting_rules.rs): the refunds account is
/// UUIDv5(this, "revenue:refunds:eur").
const BOOKKEEPING_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_5a0e_8d1b_4c55_9e0f_b0a4_5d2c_7e11);

fn url(path: &str) -> String {
    format!("{GATEWAY}{path}")
}

async fn token(
    http: &reqwest::Client,
    user: &str,
    secret: &str,
    scope: &str,
    audience: &str,
) -> anyhow::Result<String> {
    platform_test_support::client_credentials_grant(
        http,
        &url("/auth/oauth2/token"),
        user,
        secret,
        scope,
        audience,
    )
    .await
    .map(|(token, _lifetime)| token)
}

/// Status and JSON body; a refusal fails with the body in the message.
async fn expect_status(
    request: reqwest::RequestBuilder,
    expected: &[u16],
    what: &str,
) -> anyhow::Result<Value> {
    let res = request.send().await?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    anyhow::ensure!(expected.contains(&status), "{what}: {status} {text}");
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn iso(t: time::OffsetDateTime) -> anyhow::Result<String> {
    Ok(t.format(&time::format_description::well_known::Rfc3339)?)
}

/// Mail the catcher holds for `to` whose subject or text has `needle`.
async fn wait_mail(http: &reqwest::Client, to: &str, needle: &str) -> anyhow::Result<Value> {
    eventually(
        Duration::from_secs(60),
        &format!("mail to {to} with {needle:?}"),
        || async {
            let answer: Value = http
                .get(format!("{CATCHER}/api/messages"))
                .query(&[("to", to)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            answer["messages"].as_array()?.iter().find_map(|m| {
                let subject = m["subject"].as_str().unwrap_or_default();
                let text = m["text"].as_str().unwrap_or_default();
                (subject.contains(needle) || text.contains(needle)).then(|| m.clone())
            })
        },
    )
    .await
}

/// The booking once `done` holds for it.
async fn wait_booking(
    book: &reqwest::Client,
    booking_url: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    eventually(Duration::from_secs(60), booking_url, || async {
        let b: Value = book.get(booking_url).send().await.ok()?.json().await.ok()?;
        done(&b).then_some(b)
    })
    .await
}

/// The refunds account's debit-positive balance in minor units (0 before
/// its first entry): a refund debits it.
async fn refunds_balance(ledger: &reqwest::Client, account: uuid::Uuid) -> anyhow::Result<i64> {
    let res = ledger
        .get(url(&format!("/bookkeeping/v1/accounts/{account}/balance")))
        .send()
        .await?;
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(0);
    }
    let body: Value = res.json().await?;
    body["balance"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no balance in {body}"))
}

#[tokio::test]
#[ignore = "needs the running stack: make bookings-walkthrough"]
async fn book_pay_get_the_email_cancel_and_see_refund_and_ledger_through_the_gateway()
-> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let client_id = format!("club-{nanos}");
    let email = format!("erika-{nanos}@example.com");

    // A club app with what the walk-through needs (auth's admin API).
    let admin = authorized_client(
        &token(&http, "platform-admin", ADMIN_SECRET, "auth:admin", "auth").await?,
    )?;
    let created = expect_status(
        admin.post(url("/auth/admin/clients")).json(&json!({
            "client_id": client_id, "name": "club app", "grant_types": ["client_credentials"],
            "allowed_scopes": ["bookings:admin", "bookings:read", "bookings:write",
                               "communication:write", "bookkeeping:read"],
            "allowed_audiences": ["bookings", "communication", "bookkeeping"],
        })),
        &[201],
        "create the club client",
    )
    .await?;
    let secret = created["client_secret"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no client secret: {created}"))?;
    let client = |scope: &'static str, audience: &'static str| {
        let (http, client_id, secret) = (&http, &client_id, secret);
        async move { authorized_client(&token(http, client_id, secret, scope, audience).await?) }
    };
    let book = client("bookings:admin bookings:read bookings:write", "bookings").await?;
    let comm = client("communication:write", "communication").await?;
    let ledger = client("bookkeeping:read", "bookkeeping").await?;

    // The participant (the token's subject) reads German mail.
    expect_status(
        comm.put(url(&format!("/communication/v1/recipients/{client_id}")))
            .json(&json!({ "email": email, "locale": "de" })),
        &[200],
        "recipient",
    )
    .await?;

    let now = time::OffsetDateTime::now_utc();
    let offering = expect_status(
        book.post(url("/bookings/v1/offerings")).json(&json!({
            "kind": "course", "title": "Swimming for beginners",
            "starts_at": iso(now + time::Duration::days(30))?,
            "price_amount": 12000, "currency": "EUR", "capacity": 12,
            "booking_opens_at": iso(now - time::Duration::days(1))?,
            "booking_closes_at": iso(now + time::Duration::days(29))?,
            "refund_policy": [{ "until": iso(now + time::Duration::days(20))?, "percent": 50 }],
        })),
        &[201],
        "create the offering",
    )
    .await?;
    let offering_id = offering["id"].as_str().unwrap_or_default().to_owned();
    let catalogue = expect_status(
        book.get(url("/bookings/v1/offerings?kind=course")),
        &[200],
        "catalogue",
    )
    .await?;
    anyhow::ensure!(catalogue["items"].is_array(), "catalogue: {catalogue}");

    // Reserve a place; bookings creates the payment at payments.
    let booking = expect_status(
        book.post(url("/bookings/v1/bookings"))
            .header("Idempotency-Key", format!("walk-{nanos}"))
            .json(&json!({ "offering_id": offering_id, "locale": "de" })),
        &[201],
        "book a place",
    )
    .await?;
    let booking_id = booking["id"].as_str().unwrap_or_default().to_owned();
    let booking_url = url(&format!("/bookings/v1/bookings/{booking_id}"));
    let with_payment =
        wait_booking(&book, &booking_url, |b| b["payment"]["id"].is_string()).await?;
    let payment_id = with_payment["payment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Pay with the sandbox's test card, through bookings (the payment's
    // owner at payments); payments' event confirms the booking.
    let paid = expect_status(
        book.post(url(&format!("/bookings/v1/bookings/{booking_id}/pay")))
            .header("Idempotency-Key", format!("walk-pay-{nanos}"))
            .json(&json!({ "card_number": "4242424242424242" })),
        &[200],
        "pay the booking",
    )
    .await?;
    anyhow::ensure!(paid["payment"]["id"] == payment_id.as_str(), "paid: {paid}");
    let confirmed = wait_booking(&book, &booking_url, |b| b["state"] == "confirmed").await?;
    anyhow::ensure!(
        confirmed["history"]
            .as_array()
            .is_some_and(|h| h.len() >= 2),
        "history: {confirmed}"
    );
    let mail = wait_mail(&http, &email, "bestätigt").await?;
    let text = mail["text"].as_str().unwrap_or_default();
    anyhow::ensure!(text.contains("120,00 EUR"), "German amount: {mail}");

    // Cancel before the policy's date: 50 % back, booked as a refund.
    let refunds_account = uuid::Uuid::new_v5(&BOOKKEEPING_NAMESPACE, b"revenue:refunds:eur");
    let before = refunds_balance(&ledger, refunds_account).await?;
    let cancel = book
        .post(url(&format!("/bookings/v1/bookings/{booking_id}/cancel")))
        .send()
        .await?;
    anyhow::ensure!(
        cancel.status().is_success(),
        "cancel: {} {}",
        cancel.status(),
        cancel.text().await?
    );
    let refunded = wait_booking(&book, &booking_url, |b| b["state"] == "refunded").await?;
    anyhow::ensure!(refunded["refund_amount"] == 6000, "refunded: {refunded}");
    wait_mail(&http, &email, "Stornierung").await?;
    let receipt = wait_mail(&http, &email, "60,00 EUR für die Zahlung").await?;
    anyhow::ensure!(
        receipt["text"]
            .as_str()
            .is_some_and(|t| t.contains(&payment_id)),
        "refund receipt: {receipt}"
    );
    let booked = eventually(
        Duration::from_secs(60),
        "the refund in the ledger",
        || async {
            let now = refunds_balance(&ledger, refunds_account).await.ok()?;
            (now - before == 6000).then_some(now)
        },
    )
    .await?;
    println!(
        "booking {booking_id}: {} → refunded; payment {payment_id} refunded 6000; refunds account {before} → {booked}",
        refunded["state"]
    );
    Ok(())
}
