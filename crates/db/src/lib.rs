//! PostgreSQL the one way: [`begin`] starts every transaction a service
//! opens on its pool.
//!
//! Why not `PgPool::begin` (sqlx 0.8.6): it sends `BEGIN`, waits for the
//! answer, and only then counts the transaction. A caller cancelled during
//! that wait (a request past its deadline, a client gone, a shutdown) drops
//! the future with the count still 0, so nothing queues a `ROLLBACK`, and the
//! connection goes back to the pool *inside* a transaction: the next request
//! that borrows it runs in that transaction, its writes never committed and
//! the locks it takes held until the connection dies. [`begin`] runs the
//! start on a task of its own, which a cancelled caller does not cancel: the
//! transaction is either handed over or, once started, dropped by the task,
//! which rolls it back like any dropped transaction.
//!
//! `clippy.toml` disallows `Pool::begin` so that this stays the one way.

use sqlx::{PgPool, Postgres, Transaction};

/// Starts a transaction on a connection of `pool`, safe to cancel.
///
/// # Errors
/// What `PgPool::begin` returns: no connection within the pool's acquire
/// timeout, or the database refused `BEGIN`.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that calls it, on a task a caller cannot cancel"
    )]
    let started = tokio::spawn(async move { pool.begin().await });
    match started.await {
        Ok(result) => result,
        // The task panicked (sqlx never does) or the runtime is shutting down.
        Err(e) => Err(sqlx::Error::Io(std::io::Error::other(e))),
    }
}
