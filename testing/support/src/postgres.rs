//! A PostgreSQL database per test, created on the local server (started by
//! `scripts/infra.sh`) with the owning service's role, dropped afterwards.

use platform_settings::DatabaseSettings;
use sqlx::{Connection, Executor, PgConnection};

#[derive(Debug)]
pub struct TestDatabase {
    settings: DatabaseSettings,
}

impl TestDatabase {
    /// Creates `<service database>_t_<random>` owned by the service's role.
    /// `base` are the service's own settings (role, password, server).
    pub async fn create(base: &DatabaseSettings) -> anyhow::Result<Self> {
        let name = format!("{}_t_{}", base.database_name, uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&base.connect_options())
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach PostgreSQL as {} (run `make infra`): {e}",
                    base.username
                )
            })?;
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await?;
        admin.close().await?;
        let mut settings = base.clone();
        settings.database_name = name;
        Ok(Self { settings })
    }

    /// [`TestDatabase::create`] from a service's own database settings,
    /// which are then pointed at the new database: a service's database of
    /// its own, in one step.
    pub async fn create_in_place(database: &mut DatabaseSettings) -> anyhow::Result<Self> {
        let db = Self::create(database).await?;
        database.clone_from(&db.settings);
        Ok(db)
    }

    /// [`TestDatabase::create`] with the role of `service` in
    /// scripts/sql/service-databases.sql (role, password and database all
    /// named after the service), for a service whose own settings do not
    /// name its database (payments' state store is a Dapr component).
    pub async fn create_for(service: &str) -> anyhow::Result<Self> {
        Self::create(&DatabaseSettings {
            host: "127.0.0.1".into(),
            port: 5432,
            username: service.into(),
            password: service.to_owned().into(),
            database_name: service.into(),
            require_ssl: false,
            max_connections: 2,
            acquire_timeout_ms: 5000,
        })
        .await
    }

    /// The service's settings pointing at this test's database.
    pub fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    pub async fn connect(&self) -> anyhow::Result<PgConnection> {
        Ok(PgConnection::connect_with(&self.settings.connect_options()).await?)
    }

    /// Makes this database unavailable to the service (and only to it: the
    /// shared PostgreSQL keeps running): no new connection is allowed and
    /// the open ones are ended, what a service sees while its database
    /// restarts. [`Self::back`] ends it.
    pub async fn outage(&self) -> anyhow::Result<()> {
        self.allow_connections(false).await
    }

    /// Ends an [`Self::outage`].
    pub async fn back(&self) -> anyhow::Result<()> {
        self.allow_connections(true).await
    }

    async fn allow_connections(&self, allow: bool) -> anyhow::Result<()> {
        // As the database's owner (the service's role), from its role's own
        // database.
        let mut base = self.settings.clone();
        base.database_name = base.username.clone();
        let mut admin = PgConnection::connect_with(&base.connect_options()).await?;
        let name = &self.settings.database_name;
        admin
            .execute(format!(r#"ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}"#).as_str())
            .await?;
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(name)
            .execute(&mut admin)
            .await?;
        }
        Ok(())
    }

    /// A pool on this database, for a test or benchmark that queries it
    /// from several tasks.
    pub async fn pool(&self) -> anyhow::Result<sqlx::PgPool> {
        Ok(sqlx::PgPool::connect_with(self.settings.connect_options()).await?)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop is synchronous; run the async DROP on a thread of its own and
        // wait for it, so no database outlives the test.
        let settings = self.settings.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut base = settings.clone();
                base.database_name = settings.username.clone();
                let mut admin = PgConnection::connect_with(&base.connect_options()).await?;
                admin
                    .execute(
                        format!(
                            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
                            settings.database_name
                        )
                        .as_str(),
                    )
                    .await?;
                admin.close().await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!(
                "test database {} not dropped: {error}",
                self.settings.database_name
            );
        }
    }
}
