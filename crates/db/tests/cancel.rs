//! A transaction start cancelled at any point leaves no pooled connection
//! inside a transaction (against the real PostgreSQL of `make infra`).

use std::task::Poll;
use std::time::Duration;

use platform_test_support::TestDatabase;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// One connection, not tested before it is handed out, so that a
/// cancellation lands inside `BEGIN` rather than inside a ping.
async fn one_connection(db: &TestDatabase) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(db.settings().connect_options())
        .await?;
    Ok(pool)
}

/// Whether the pool's connection is inside a transaction block: `SAVEPOINT`
/// is refused anywhere else.
async fn left_in_a_transaction(pool: &PgPool) -> anyhow::Result<bool> {
    let mut conn = pool.acquire().await?;
    let inside = sqlx::query("SAVEPOINT probe")
        .execute(&mut *conn)
        .await
        .is_ok();
    if inside {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    }
    Ok(inside)
}

/// Cancels `start` `TRIES` times: every other time right after its first
/// poll (by then `BEGIN` is usually on the wire), else after 10–190 µs.
/// How many left the connection inside a transaction.
async fn cancel_repeatedly<F, Fut, T>(pool: &PgPool, start: F) -> anyhow::Result<usize>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    const TRIES: u64 = 200;
    let mut left = 0;
    for i in 0..TRIES {
        // The connection back in the pool first (it is returned by a task),
        // so that the first poll gets it and goes on to send `BEGIN`.
        while pool.num_idle() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if i % 2 == 0 {
            let mut started = std::pin::pin!(start());
            let polled = std::future::poll_fn(|cx| Poll::Ready(started.as_mut().poll(cx))).await;
            if let Poll::Ready(started) = polled {
                drop(started?);
            }
        } else {
            let after = Duration::from_micros((i % 20) * 10);
            if let Ok(started) = tokio::time::timeout(after, start()).await {
                drop(started?);
            }
        }
        if left_in_a_transaction(pool).await? {
            left += 1;
        }
    }
    Ok(left)
}

#[tokio::test]
async fn a_cancelled_begin_never_returns_a_connection_inside_a_transaction() {
    let db = TestDatabase::create_for("bookings").await.unwrap();
    let pool = one_connection(&db).await.unwrap();
    let left = cancel_repeatedly(&pool, || platform_db::begin(&pool))
        .await
        .unwrap();
    assert_eq!(
        left, 0,
        "{left} of 200 cancelled starts left a transaction open"
    );
}

/// Why `platform_db::begin` exists: sqlx's own `Pool::begin`, cancelled
/// while it waits for `BEGIN`'s answer, does leave the connection in a
/// transaction (sqlx 0.8.6). When an sqlx upgrade fixes it this test fails:
/// then `platform_db::begin` and the clippy rule can go.
#[tokio::test]
async fn sqlx_pool_begin_cancelled_does_leave_a_transaction_open() {
    let db = TestDatabase::create_for("bookings").await.unwrap();
    let pool = one_connection(&db).await.unwrap();
    #[expect(clippy::disallowed_methods, reason = "shows the bug it works around")]
    let left = cancel_repeatedly(&pool, || pool.begin()).await.unwrap();
    eprintln!("{left} of 200 cancelled Pool::begin calls left a transaction open");
    assert!(left > 0, "no cancelled Pool::begin left a transaction open");
}

#[tokio::test]
async fn a_transaction_started_by_begin_commits_and_rolls_back() {
    let db = TestDatabase::create_for("bookings").await.unwrap();
    let pool = one_connection(&db).await.unwrap();
    sqlx::query("CREATE TABLE t (n int)")
        .execute(&pool)
        .await
        .unwrap();

    let mut tx = platform_db::begin(&pool).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = platform_db::begin(&pool).await.unwrap();
    sqlx::query("INSERT INTO t VALUES (2)")
        .execute(&mut *tx)
        .await
        .unwrap();
    drop(tx);

    let rows: Vec<i32> = sqlx::query_scalar("SELECT n FROM t")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows, vec![1]);
    assert!(!left_in_a_transaction(&pool).await.unwrap());
}
