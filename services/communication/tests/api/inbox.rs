//! The inbox table this service's migrations create is the one the claims
//! of `platform_consumer::inbox` need.

use platform_consumer::inbox;
use platform_test_support::TestDatabase;

use crate::helpers::settings;

#[tokio::test]
async fn the_migrations_create_the_inbox_the_consumer_kit_needs() {
    let db = TestDatabase::create(&settings().database).await.unwrap();
    let mut conn = db.connect().await.unwrap();
    sqlx::migrate!("./migrations").run(&mut conn).await.unwrap();

    inbox::check_table(&mut conn).await.unwrap();
}

#[tokio::test]
async fn the_migrations_create_the_parking_lot_the_consumer_kit_needs() {
    let db = TestDatabase::create(&settings().database).await.unwrap();
    let mut conn = db.connect().await.unwrap();
    sqlx::migrate!("./migrations").run(&mut conn).await.unwrap();

    platform_consumer::parking_lot::check_table(&mut conn)
        .await
        .unwrap();
}
