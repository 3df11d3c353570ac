//! A connection that went back to the pool inside a transaction is never
//! handed out again (against the real PostgreSQL of `make infra`). The
//! transaction is left open here with a raw `BEGIN` that sqlx does not
//! count, which is what its cancelled `begin()` leaves behind (tests in
//! cancel.rs).

use platform_test_support::TestDatabase;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

/// Leaves the pool's one connection inside a transaction, then writes a row
/// with an autocommit statement through the pool. Whether another session
/// sees the row.
async fn write_after_a_leftover_transaction(
    db: &TestDatabase,
    options: PgPoolOptions,
) -> anyhow::Result<bool> {
    let pool: PgPool = options
        .max_connections(1)
        .connect_with(db.settings().connect_options())
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS t (n int)")
        .execute(&pool)
        .await?;
    sqlx::query("TRUNCATE t").execute(&pool).await?;
    {
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    }
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&pool)
        .await?;
    let mut other = PgConnection::connect_with(&db.settings().connect_options()).await?;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&mut other)
        .await?;
    other.close().await?;
    pool.close().await;
    Ok(seen == 1)
}

#[tokio::test]
async fn a_write_after_a_leftover_transaction_is_committed() {
    let db = TestDatabase::create_for("communication").await.unwrap();
    assert!(
        write_after_a_leftover_transaction(&db, platform_db::pool_options())
            .await
            .unwrap(),
        "the write ran inside the leftover transaction and was never committed"
    );
}

/// What the guard prevents: with sqlx's own options (its ping before
/// acquire included) the same write lands in the leftover transaction and
/// nobody else ever sees it.
#[tokio::test]
async fn without_the_guard_the_write_vanishes_into_the_leftover_transaction() {
    let db = TestDatabase::create_for("communication").await.unwrap();
    assert!(
        !write_after_a_leftover_transaction(&db, PgPoolOptions::new())
            .await
            .unwrap(),
        "sqlx now refuses a connection inside a transaction by itself: the guard may go"
    );
}

#[tokio::test]
async fn the_guard_hands_out_healthy_connections_and_keeps_them() {
    let db = TestDatabase::create_for("communication").await.unwrap();
    let pool = platform_db::pool_options()
        .max_connections(1)
        .connect_with(db.settings().connect_options())
        .await
        .unwrap();
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    // A committed and a rolled-back transaction leave the connection clean.
    let tx = platform_db::begin(&pool).await.unwrap();
    tx.commit().await.unwrap();
    drop(platform_db::begin(&pool).await.unwrap());
    let again: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(first, again, "a clean connection was closed by the guard");
}
