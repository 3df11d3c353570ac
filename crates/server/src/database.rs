//! Telling a database that is away from a query that failed: the first is a
//! 503 the client may retry ([`Problem::database_unavailable`]), the second
//! a 500.

use platform_problem::Problem;

/// Whether `error` means the database could not be reached (no connection
/// in time, a broken connection, a closed pool) rather than that the
/// statement failed.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

/// The answer to a request whose database call failed with `error`,
/// logged here, once: a warning and a 503 when the database is unavailable,
/// an error and a 500 that says nothing about the cause otherwise.
pub fn problem(error: &sqlx::Error) -> Problem {
    if is_unavailable(error) {
        tracing::warn!(%error, "database unavailable");
        Problem::database_unavailable()
    } else {
        tracing::error!(%error, "request failed");
        Problem::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::{is_unavailable, problem};

    #[test]
    fn outages_are_unavailable_and_failed_statements_are_not() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::other(
            "connection reset"
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }

    #[test]
    fn only_an_outage_is_a_503() {
        assert_eq!(problem(&sqlx::Error::PoolTimedOut).status, 503);
        assert_eq!(problem(&sqlx::Error::RowNotFound).status, 500);
    }
}
