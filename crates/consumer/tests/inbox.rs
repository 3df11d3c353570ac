//! The inbox claims against a real PostgreSQL (started by `make infra`), in
//! a database per test with the table from `inbox::MIGRATION`.

use platform_consumer::inbox::{self, Entry, TableError};
use platform_test_support::TestDatabase;
use sqlx::{Connection, Executor, PgConnection};

/// A database with the kit's inbox table. The kit has no database role of
/// its own; it borrows a consumer's (any role with CREATEDB would do).
async fn database() -> anyhow::Result<(TestDatabase, PgConnection)> {
    let db = TestDatabase::create_for("bookkeeping").await?;
    let mut conn = db.connect().await?;
    sqlx::raw_sql(inbox::MIGRATION).execute(&mut conn).await?;
    Ok((db, conn))
}

fn entry<'a>(source: &'a str, id: &'a str) -> Entry<'a> {
    Entry {
        source,
        id,
        event_type: "payments.payment.succeeded",
        topic: "payments",
        subject: Some("pay_1"),
    }
}

async fn rows(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM inbox")
        .fetch_one(conn)
        .await
}

#[tokio::test]
async fn an_event_is_claimed_once_and_only_if_its_transaction_commits() {
    let (_db, mut conn) = database().await.unwrap();

    let mut tx = conn.begin().await.unwrap();
    assert!(
        inbox::claim(&mut tx, &entry("payments", "e1"))
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    assert_eq!(
        rows(&mut conn).await.unwrap(),
        0,
        "a rolled-back claim is no claim"
    );

    let mut tx = conn.begin().await.unwrap();
    assert!(
        inbox::claim(&mut tx, &entry("payments", "e1"))
            .await
            .unwrap()
    );
    assert!(
        !inbox::claim(&mut tx, &entry("payments", "e1"))
            .await
            .unwrap(),
        "the second claim in the same transaction"
    );
    tx.commit().await.unwrap();
    assert!(
        !inbox::claim(&mut conn, &entry("payments", "e1"))
            .await
            .unwrap()
    );
    assert!(
        inbox::claim(&mut conn, &entry("bookkeeping", "e1"))
            .await
            .unwrap(),
        "the identity is (source, id)"
    );

    let recorded: (String, String, String, Option<String>) = sqlx::query_as(
        "SELECT event_id, event_type, topic, subject FROM inbox WHERE source = 'payments'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        (
            "e1".into(),
            "payments.payment.succeeded".into(),
            "payments".into(),
            Some("pay_1".into())
        )
    );
}

#[tokio::test]
async fn a_concurrent_claim_waits_for_the_first_and_then_finds_it() {
    let (db, mut first) = database().await.unwrap();
    let mut second = db.connect().await.unwrap();

    let mut tx = first.begin().await.unwrap();
    assert!(
        inbox::claim(&mut tx, &entry("payments", "e2"))
            .await
            .unwrap()
    );
    let waiting = tokio::spawn(async move {
        let claimed = inbox::claim(&mut second, &entry("payments", "e2")).await;
        (second, claimed)
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "blocked on the first transaction");
    tx.commit().await.unwrap();

    let (_second, claimed) = waiting.await.unwrap();
    assert!(!claimed.unwrap(), "the first transaction has it");
}

#[tokio::test]
async fn a_batch_claims_each_new_event_once_in_order() {
    let (_db, mut conn) = database().await.unwrap();
    assert!(
        inbox::claim(&mut conn, &entry("payments", "old"))
            .await
            .unwrap()
    );

    let mut tx = conn.begin().await.unwrap();
    let batch = [
        entry("payments", "a"),
        entry("payments", "b"),
        entry("payments", "a"),
        entry("payments", "old"),
        Entry {
            subject: None,
            ..entry("payments", "c")
        },
    ];
    let first = inbox::claim_batch(&mut tx, &batch).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(first, [true, true, false, false, true]);
    assert_eq!(rows(&mut conn).await.unwrap(), 4);
    assert_eq!(
        inbox::claim_batch(&mut conn, &batch).await.unwrap(),
        [false; 5]
    );
    assert!(inbox::claim_batch(&mut conn, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_kit_s_own_table_passes_the_check_and_leaves_no_trace() {
    let (_db, mut conn) = database().await.unwrap();
    inbox::check_table(&mut conn).await.unwrap();
    inbox::check_table(&mut conn).await.unwrap();
    let schemas: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'platform_consumer_expected'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(schemas, 0, "the scratch schema is rolled back");
}

#[tokio::test]
async fn an_incompatible_table_fails_the_check_with_what_differs() {
    let db = TestDatabase::create_for("bookkeeping").await.unwrap();
    let mut conn = db.connect().await.unwrap();
    let missing = inbox::check_table(&mut conn).await;
    assert!(
        matches!(&missing, Err(TableError::Differs(d)) if d.contains("no table inbox")),
        "{missing:?}"
    );

    conn.execute(
        "CREATE TABLE inbox (
            source text NOT NULL, event_id text NOT NULL, event_type text NOT NULL,
            subject integer, received_at timestamptz NOT NULL DEFAULT now(),
            handler text NOT NULL,
            PRIMARY KEY (event_id))",
    )
    .await
    .unwrap();
    let Err(TableError::Differs(differences)) = inbox::check_table(&mut conn).await else {
        panic!("the table differs");
    };
    for expected in [
        "column topic is missing",
        "column subject is",
        "column handler is NOT NULL without a default",
        "the primary key is",
    ] {
        assert!(
            differences.contains(expected),
            "{expected} in {differences}"
        );
    }
}
