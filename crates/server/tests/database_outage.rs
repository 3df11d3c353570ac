//! A database that is away answers 503, not 500 (against the real
//! PostgreSQL of `make infra`): the outage of `TestDatabase::outage`, what
//! a service sees while its database restarts (connections ended, new ones
//! refused with "database … is not currently accepting connections").

use std::time::Duration;

use platform_server::database::{is_unavailable, problem};
use platform_test_support::TestDatabase;

#[tokio::test]
async fn a_database_closed_to_connections_is_unavailable_not_a_failure() {
    let db = TestDatabase::create_for("auth").await.unwrap();
    let pool = db
        .settings()
        .pool_options()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(db.settings().connect_options())
        .await
        .unwrap();
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();

    db.outage().await.unwrap();
    let error = sqlx::query("SELECT 1").execute(&pool).await.unwrap_err();
    let answer = problem(&error);
    db.back().await.unwrap();

    assert!(is_unavailable(&error), "not seen as an outage: {error:?}");
    assert_eq!(answer.status, 503, "{error:?}");
    // And the pool recovers by itself once the database is back.
    sqlx::query("SELECT 1").execute(&pool).await.unwrap();
}
