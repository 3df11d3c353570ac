//! For unit tests that need SQL: the test settings and a migrated database
//! of the test's own.

use std::path::Path;

use platform_settings::Source;
use platform_test_support::TestDatabase;
use sqlx::PgPool;

use crate::settings::Settings;

pub(crate) async fn migrated() -> (Settings, TestDatabase, PgPool) {
    let settings = Source {
        config_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("config"),
        environment: "test".into(),
    }
    .load::<Settings>()
    .unwrap();
    let db = TestDatabase::create(&settings.database).await.unwrap();
    let pool = db.pool().await.unwrap();
    sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    (settings, db, pool)
}
