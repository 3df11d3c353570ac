//! Queued statement exports through pub/sub and the storage binding.

use std::time::Duration;

use platform_test_support::eventually;
use serde_json::{Value, json};

use crate::helpers::{TestApp, new_id, transfer};

async fn wait_ready(app: &TestApp, id: &str, timeout: Duration) -> Value {
    eventually(timeout, "the statement to be ready", || async {
        let (_, body) = app.get_json(&format!("/v1/statements/{id}")).await;
        (body["status"] == "ready").then_some(body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", app.daprd.log_tail(30)))
}

#[tokio::test]
async fn a_statement_is_queued_exported_through_the_binding_and_announced() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let sales = app.account("revenue", "EUR", None).await;
    let mut before = transfer(&sales, &cash, 1000, "EUR");
    before["effective_at"] = json!("2026-10-31T23:00:00Z");
    let mut first = transfer(&sales, &cash, 1250, "EUR");
    first["effective_at"] = json!("2026-11-02T10:00:00Z");
    first["description"] = json!("Court booking, \"indoor\"");
    let mut second = transfer(&cash, &sales, 250, "EUR");
    second["effective_at"] = json!("2026-11-03T10:00:00Z");
    for entry in [&before, &first, &second] {
        assert_eq!(app.post_json("/v1/entries", entry).await.0, 201);
    }

    let id = new_id();
    let request = json!({ "id": id, "account_id": cash, "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z" });
    let (status, body) = app.post_json("/v1/statements", &request).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], id.as_str());

    let ready = wait_ready(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(ready["rows"], 2);
    let download = app.get(ready["links"]["download"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    assert!(
        download.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = download.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "sequence,entry_id,effective_at,description,amount,balance,currency"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    // Opening balance 10.00, then +12.50 and -2.50: running balances.
    assert!(lines[1].ends_with(",12.50,22.50,EUR"), "{}", lines[1]);
    assert!(
        lines[1].contains(r#","Court booking, ""indoor""","#),
        "RFC 4180 quoting: {}",
        lines[1]
    );
    assert!(lines[2].ends_with(",-2.50,20.00,EUR"), "{}", lines[2]);

    // Announced once on the bookkeeping topic for communication to pick up.
    let announced = app
        .env
        .redis
        .command(&["XRANGE", "bookkeeping", "-", "+"])
        .await
        .unwrap();
    assert!(
        announced.contains("bookkeeping.statement.ready"),
        "{announced}"
    );
    assert!(
        announced.contains(&format!("statement-ready-{id}")),
        "{announced}"
    );

    // The same request again is idempotent; other parameters under its id conflict.
    assert_eq!(app.post_json("/v1/statements", &request).await.0, 202);
    let mut other = request.clone();
    other["to"] = json!("2026-11-15T00:00:00Z");
    let (status, problem) = app.post_json("/v1/statements", &other).await;
    assert_eq!(status, 409);
    assert_eq!(problem["field"], "to");
}

#[tokio::test]
async fn bad_statement_requests_are_4xx_and_record_nothing() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let cases = [
        (
            json!({ "id": new_id(), "account_id": cash, "from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z" }),
            422,
            "to",
        ),
        (
            json!({ "id": new_id(), "account_id": new_id(), "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z" }),
            422,
            "account_id",
        ),
        (
            json!({ "id": new_id(), "account_id": cash, "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z", "format": "pdf" }),
            422,
            "format",
        ),
    ];
    for (request, status, field) in cases {
        let (got, problem) = app.post_json("/v1/statements", &request).await;
        assert_eq!(got, status, "{request} -> {problem}");
        assert_eq!(problem["field"], field);
        let (got, _) = app
            .get_json(&format!(
                "/v1/statements/{}",
                request["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(got, 404);
    }
}

#[tokio::test]
async fn a_job_whose_message_was_lost_is_queued_again_by_the_sweeper() {
    let app = TestApp::spawn_with(|s| {
        s.statements.sweep_interval_ms = 200;
        s.statements.requeue_after_secs = 0;
    })
    .await;
    let cash = app.account("asset", "EUR", None).await;
    // A job recorded but never published (as if the publish had failed).
    let id = new_id();
    let mut conn = app.db.connect().await.unwrap();
    sqlx::query(
        // Owned by the test's client, which then reads it (ADR 0028).
        "INSERT INTO statements (id, account_id, period_from, period_to, format, owner_client_id)
         VALUES ($1::uuid, $2::uuid, $3, $4, 'csv', 'test-client')",
    )
    .bind(&id)
    .bind(&cash)
    .bind(time::macros::datetime!(2026-11-01 0:00 UTC))
    .bind(time::macros::datetime!(2026-12-01 0:00 UTC))
    .execute(&mut conn)
    .await
    .unwrap();

    let ready = wait_ready(&app, &id, Duration::from_secs(30)).await;
    assert_eq!(ready["rows"], 0);
    assert_eq!(
        ready["attempts"], 1,
        "claimed once although the sweeper republishes until then"
    );
}

/// Peak resident memory of this process (kB).
#[expect(clippy::unwrap_used, reason = "a test helper fails the test loudly")]
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_million_posting_statement_streams_in_bounded_memory() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    // Written straight to the database (triggers off for speed): this test is
    // about the export, not about posting.
    let mut conn = app.db.connect().await.unwrap();
    for sql in [
        "ALTER TABLE entries DISABLE TRIGGER USER",
        "ALTER TABLE postings DISABLE TRIGGER USER",
        "INSERT INTO entries (id, description, effective_at)
         SELECT gen_random_uuid(), 'bulk entry ' || g, timestamptz '2026-11-01' + g * interval '1 second'
           FROM generate_series(1, 1000000) g",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    sqlx::query("INSERT INTO postings SELECT id, 0, $1::uuid, 100, 'EUR', sequence FROM entries")
        .bind(&cash)
        .execute(&mut conn)
        .await
        .unwrap();

    let before_kb = peak_rss_kb();
    let id = new_id();
    let request = json!({ "id": id, "account_id": cash, "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z" });
    assert_eq!(app.post_json("/v1/statements", &request).await.0, 202);
    let ready = wait_ready(&app, &id, Duration::from_secs(240)).await;
    let growth_mb = (peak_rss_kb().saturating_sub(before_kb)) / 1024;

    assert_eq!(ready["rows"], 1_000_000);
    let bytes = ready["bytes"].as_i64().unwrap();
    assert!(bytes > 80 * 1024 * 1024, "{bytes} bytes");
    assert!(ready["parts"].as_i64().unwrap() > 30);
    // The CSV is ~100 MB; the service's peak memory grew by far less.
    assert!(
        growth_mb < 64,
        "peak RSS grew by {growth_mb} MB during a {} MB export",
        bytes / 1024 / 1024
    );
    // The parts on disk add up to the reported size.
    let dir = app.env.files_dir().join(format!("statements/{id}"));
    let on_disk: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(on_disk, u64::try_from(bytes).unwrap());
}

/// Statements belong to the client that requested them (ADR 0028): another
/// client gets 404 for it and its download, as for an unknown id, cannot
/// take its id; `bookkeeping:admin` reads it.
#[tokio::test]
async fn another_client_neither_reads_nor_downloads_a_statement_and_an_admin_does() {
    let app = TestApp::spawn().await;
    let cash = app.account("asset", "EUR", None).await;
    let id = new_id();
    let request = json!({ "id": id, "account_id": cash, "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z" });
    let (status, body) = app.post_json("/v1/statements", &request).await;
    assert_eq!(status, 202, "{body}");
    wait_ready(&app, &id, Duration::from_secs(30)).await;

    let other = platform_test_support::authorized_client(&app.issuer.token_for(
        "other-shop",
        "bookkeeping",
        &["bookkeeping:read", "bookkeeping:write"],
    ))
    .unwrap();
    let unknown: Value = other
        .get(app.app.url(&format!("/v1/statements/{}", new_id())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        format!("/v1/statements/{id}"),
        format!("/v1/statements/{id}/download"),
    ] {
        let res = other.get(app.app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem, unknown, "{path}: as an unknown id");
    }
    // Its id is not theirs to take either.
    let res = other
        .post(app.app.url("/v1/statements"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "{}", res.text().await.unwrap());

    let admin = platform_test_support::authorized_client(&app.issuer.token_for(
        "operator",
        "bookkeeping",
        &["bookkeeping:read", "bookkeeping:admin"],
    ))
    .unwrap();
    for path in [
        format!("/v1/statements/{id}"),
        format!("/v1/statements/{id}/download"),
    ] {
        let res = admin.get(app.app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    let (status, _) = app.get_json(&format!("/v1/statements/{id}")).await;
    assert_eq!(status, 200, "the owner still reads it");
}
