//! The ledger API over a real PostgreSQL database: the invariants hold, bad
//! input changes nothing, writes are idempotent, bounds hold under
//! concurrency.

use platform_money::Currency;
use platform_test_support::TestDatabase;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::{TestApp, new_id, settings, transfer};

#[tokio::test]
async fn accounts_are_idempotent_by_id_and_conflicts_name_the_field() {
    let app = TestApp::spawn().await;
    let id = new_id();
    let body = json!({ "id": id, "code": "asset:cash", "name": "Cash", "kind": "asset", "currency": "EUR" });

    assert_eq!(app.post_json("/v1/accounts", &body).await.0, 201);
    let (status, again) = app.post_json("/v1/accounts", &body).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], id.as_str());

    let mut renamed = body.clone();
    renamed["name"] = json!("Petty cash");
    let (status, problem) = app.post_json("/v1/accounts", &renamed).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "idempotency_conflict");
    assert_eq!(problem["field"], "name");

    let (status, problem) = app
        .post_json("/v1/accounts", &json!({ "id": new_id(), "code": "Bad Code", "name": "x", "kind": "asset", "currency": "EUR" }))
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["field"], "code");
    let (status, _) = app
        .post_json("/v1/accounts", &json!({ "id": new_id(), "code": "asset:x", "name": "x", "kind": "asset", "currency": "XXX" }))
        .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn an_entry_posts_once_and_a_different_body_under_its_id_is_a_409_naming_the_field() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", Some(0)).await;
    let sales = app.account("revenue", "EUR", Some(0)).await;
    let entry = transfer(&sales, &cash, 1250, "EUR");

    let (status, first) = app.post_json("/v1/entries", &entry).await;
    assert_eq!(status, 201, "{first}");
    let (status, replay) = app.post_json("/v1/entries", &entry).await;
    assert_eq!(status, 200);
    assert_eq!(replay["sequence"], first["sequence"]);

    // A timestamp finer than PostgreSQL's microseconds replays as the same entry.
    let mut precise = transfer(&sales, &cash, 1, "EUR");
    precise["effective_at"] = json!("2026-11-26T10:00:00.123456789Z");
    assert_eq!(app.post_json("/v1/entries", &precise).await.0, 201);
    assert_eq!(app.post_json("/v1/entries", &precise).await.0, 200);

    let mut changed = entry.clone();
    changed["postings"][1]["amount"] = json!(-1251);
    changed["postings"][0]["amount"] = json!(1251);
    let (status, problem) = app.post_json("/v1/entries", &changed).await;
    assert_eq!(status, 409);
    assert_eq!(problem["field"], "postings[0].amount");

    assert_eq!(app.balance(&cash).await, 1251);
    assert_eq!(app.balance(&sales).await, 1251);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn unbalanced_cross_currency_and_unknown_account_entries_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let sales = app.account("revenue", "EUR", None).await;
    let usd = app.account("asset", "USD", None).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "id": new_id(), "effective_at": "2026-11-26T10:00:00Z", "postings": [
                { "account_id": cash, "amount": 100, "currency": "EUR" },
                { "account_id": sales, "amount": -90, "currency": "EUR" } ] }),
            "postings",
        ),
        (
            json!({ "id": new_id(), "effective_at": "2026-11-26T10:00:00Z", "postings": [
                { "account_id": cash, "amount": 100, "currency": "EUR" },
                { "account_id": usd, "amount": -100, "currency": "USD" } ] }),
            "postings",
        ),
        (
            transfer(&sales, &new_id(), 100, "EUR"),
            "postings[0].account_id",
        ),
        (transfer(&sales, &usd, 100, "EUR"), "postings[0].currency"),
    ];
    for (entry, field) in cases {
        let (status, problem) = app.post_json("/v1/entries", &entry).await;
        assert_eq!(status, 422, "{entry} -> {problem}");
        assert_eq!(problem["field"], field, "{problem}");
        let (status, _) = app
            .get_json(&format!("/v1/entries/{}", entry["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 404);
    }
    assert_eq!(app.balance(&cash).await, 0);
    assert_eq!(app.balance(&sales).await, 0);
    assert_eq!(app.balance(&usd).await, 0);
}

#[tokio::test]
async fn an_fx_entry_with_legs_balancing_in_each_currency_posts() {
    let app = TestApp::spawn().await;
    let eur_cash = app.account("asset", "EUR", None).await;
    let eur_fx = app.account("equity", "EUR", None).await;
    let usd_cash = app.account("asset", "USD", None).await;
    let usd_fx = app.account("equity", "USD", None).await;
    let entry = json!({ "id": new_id(), "description": "sell 100 EUR for 110 USD", "effective_at": "2026-11-26T10:00:00Z",
        "postings": [
            { "account_id": eur_fx, "amount": 100, "currency": "EUR" },
            { "account_id": eur_cash, "amount": -100, "currency": "EUR" },
            { "account_id": usd_cash, "amount": 110, "currency": "USD" },
            { "account_id": usd_fx, "amount": -110, "currency": "USD" } ] });
    let (status, body) = app.post_json("/v1/entries", &entry).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(app.balance(&usd_cash).await, 110);
    assert_eq!(app.balance(&eur_cash).await, -100);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn a_bounded_account_cannot_be_overdrawn_and_the_failed_entry_leaves_nothing() {
    let app = TestApp::spawn().await;
    let wallet = app.account("asset", "EUR", Some(0)).await;
    let equity = app.account("equity", "EUR", None).await;
    let sink = app.account("expense", "EUR", None).await;
    assert_eq!(
        app.post_json("/v1/entries", &transfer(&equity, &wallet, 500, "EUR"))
            .await
            .0,
        201
    );

    let overdraw = transfer(&wallet, &sink, 501, "EUR");
    let (status, problem) = app.post_json("/v1/entries", &overdraw).await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "account_bounds_exceeded");
    assert_eq!(app.balance(&wallet).await, 500);
    assert_eq!(app.balance(&sink).await, 0);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn parallel_transfers_never_overdraw_a_bounded_account() {
    let app = TestApp::spawn().await;
    let wallet = app.account("asset", "EUR", Some(0)).await;
    let equity = app.account("equity", "EUR", None).await;
    let sink = app.account("expense", "EUR", None).await;
    assert_eq!(
        app.post_json("/v1/entries", &transfer(&equity, &wallet, 1000, "EUR"))
            .await
            .0,
        201
    );

    let transfers: Vec<Value> = (0..40)
        .map(|_| transfer(&wallet, &sink, 100, "EUR"))
        .collect();
    let results =
        futures::future::join_all(transfers.iter().map(|t| app.post_json("/v1/entries", t))).await;
    let accepted = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 422 && b["code"] == "account_bounds_exceeded")
        .count();

    assert_eq!(accepted, 10, "exactly the funds available: {results:?}");
    assert_eq!(refused, 30);
    assert_eq!(app.balance(&wallet).await, 0);
    assert_eq!(app.balance(&sink).await, 1000);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let wallet = app.account("asset", "EUR", Some(0)).await;
    let equity = app.account("equity", "EUR", None).await;
    let sink = app.account("expense", "EUR", None).await;

    let fund = transfer(&equity, &wallet, 300, "EUR");
    let ok = transfer(&wallet, &sink, 200, "EUR");
    let too_much = transfer(&wallet, &sink, 200, "EUR");
    let (status, problem) = app
        .post_json(
            "/v1/entries/batch",
            &json!({ "entries": [fund, ok, too_much] }),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(app.balance(&wallet).await, 0);
    assert_eq!(app.balance(&equity).await, 0);
    let (status, _) = app
        .get_json(&format!("/v1/entries/{}", fund["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        status, 404,
        "the first entry of a failed batch must not stay"
    );

    let (status, body) = app
        .post_json("/v1/entries/batch", &json!({ "entries": [fund, ok] }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["entries"].as_array().unwrap().len(), 2);
    assert_eq!(app.balance(&wallet).await, 100);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn a_reversal_restores_balances_once_and_cannot_itself_be_reversed() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let sales = app.account("revenue", "EUR", None).await;
    let entry = transfer(&sales, &cash, 700, "EUR");
    let entry_id = entry["id"].as_str().unwrap().to_owned();
    assert_eq!(app.post_json("/v1/entries", &entry).await.0, 201);

    let reversal_id = new_id();
    let path = format!("/v1/entries/{entry_id}/reversal");
    let (status, reversal) = app.post_json(&path, &json!({ "id": reversal_id })).await;
    assert_eq!(status, 201, "{reversal}");
    assert_eq!(reversal["reverses"], entry_id.as_str());
    assert_eq!(app.balance(&cash).await, 0);

    // Replaying the same reversal is idempotent...
    assert_eq!(
        app.post_json(&path, &json!({ "id": reversal_id })).await.0,
        200
    );
    // ...a second, different reversal is refused...
    let (status, problem) = app.post_json(&path, &json!({ "id": new_id() })).await;
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "already_reversed");
    // ...and a reversal is not reversed.
    let (status, problem) = app
        .post_json(
            &format!("/v1/entries/{reversal_id}/reversal"),
            &json!({ "id": new_id() }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "reversal_of_reversal");
    assert_eq!(app.balance(&cash).await, 0);
    app.assert_books_consistent().await;
}

#[tokio::test]
async fn point_in_time_balances_by_sequence_and_by_effective_time() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let sales = app.account("revenue", "EUR", None).await;
    let mut first = transfer(&sales, &cash, 100, "EUR");
    first["effective_at"] = json!("2026-01-01T00:00:00Z");
    let mut second = transfer(&sales, &cash, 50, "EUR");
    second["effective_at"] = json!("2026-02-01T00:00:00Z");
    let (_, first) = app.post_json("/v1/entries", &first).await;
    app.post_json("/v1/entries", &second).await;

    let seq = first["sequence"].as_i64().unwrap();
    let (_, at_first) = app
        .get_json(&format!("/v1/accounts/{cash}/balance?as_of_sequence={seq}"))
        .await;
    assert_eq!(at_first["normal_balance"], 100);
    let (_, in_january) = app
        .get_json(&format!(
            "/v1/accounts/{cash}/balance?as_of=2026-01-15T00:00:00Z"
        ))
        .await;
    assert_eq!(in_january["normal_balance"], 100);
    let (_, before) = app
        .get_json(&format!(
            "/v1/accounts/{cash}/balance?as_of=2025-12-31T00:00:00Z"
        ))
        .await;
    assert_eq!(before["normal_balance"], 0);
    assert_eq!(app.balance(&cash).await, 150);
    let (status, problem) = app
        .get_json(&format!("/v1/accounts/{cash}/balance?as_of=yesterday"))
        .await;
    assert_eq!(status, 400, "{problem}");
}

#[tokio::test]
async fn the_database_refuses_to_update_or_delete_posted_rows() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let sales = app.account("revenue", "EUR", None).await;
    app.post_json("/v1/entries", &transfer(&sales, &cash, 100, "EUR"))
        .await;

    let mut conn = app.db.connect().await.unwrap();
    for sql in [
        "UPDATE postings SET amount = amount * 2",
        "DELETE FROM postings",
        "DELETE FROM entries",
        "UPDATE entries SET description = 'changed'",
        "UPDATE accounts SET balance = balance + 1",
        "TRUNCATE postings CASCADE",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err(sql);
        let message = err.to_string();
        assert!(
            message.contains("immutable") || message.contains("only through postings"),
            "{sql}: {message}"
        );
    }
    // A posting cannot be added later to an entry that is already posted.
    let err = sqlx::query(
        "INSERT INTO postings (entry_id, position, account_id, amount, currency, entry_sequence)
         SELECT id, 9, $1::uuid, 0 + 1, 'EUR', sequence FROM entries LIMIT 1",
    )
    .bind(uuid::Uuid::parse_str(&cash).unwrap())
    .execute(&mut conn)
    .await
    .expect_err("a posting added to a committed entry");
    assert!(
        err.to_string().contains("only be inserted with the entry"),
        "{err}"
    );

    // An unbalanced entry written straight to the database fails at commit.
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO entries (id, description, effective_at) VALUES (gen_random_uuid(), 'raw', now()) RETURNING sequence",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO postings (entry_id, position, account_id, amount, currency, entry_sequence)
         SELECT id, 0, $1::uuid, 5, 'EUR', sequence FROM entries WHERE sequence = $2",
    )
    .bind(uuid::Uuid::parse_str(&cash).unwrap())
    .bind(seq)
    .execute(&mut *tx)
    .await
    .unwrap();
    let err = tx
        .commit()
        .await
        .expect_err("an entry with one posting must not commit");
    assert!(err.to_string().contains("at least two"), "{err}");
    assert_eq!(app.balance(&cash).await, 100);
    app.assert_books_consistent().await;
}

/// The `currencies` table (the codes an account may use) and platform-money
/// agree on every exponent: amounts the ledger stores are read and formatted
/// with the exponent they were meant in.
#[tokio::test]
async fn the_currencies_table_agrees_with_platform_money() {
    let db = TestDatabase::create(&settings().database).await.unwrap();
    let pool = PgPool::connect_with(db.settings().connect_options())
        .await
        .unwrap();
    sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    let rows: Vec<(String, i16)> =
        sqlx::query_as("SELECT code, exponent FROM currencies ORDER BY code")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(rows.len() >= 12, "{rows:?}");
    for (code, exponent) in rows {
        let currency = Currency::parse(&code).unwrap();
        assert_eq!(i16::from(currency.exponent()), exponent, "{code}");
    }
    pool.close().await;
    drop(db);
}
