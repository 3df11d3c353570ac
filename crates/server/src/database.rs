//! Telling a database that is away from a query that failed: the first is a
//! 503 the client may retry ([`platform_problem::Problem::database_unavailable`]),
//! the second a 500.

/// Whether `error` means the database could not be reached (no connection
/// in time, a broken connection, a closed pool) rather than that the
/// statement failed.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

#[cfg(test)]
mod tests {
    use super::is_unavailable;

    #[test]
    fn outages_are_unavailable_and_failed_statements_are_not() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(is_unavailable(&sqlx::Error::PoolClosed));
        assert!(is_unavailable(&sqlx::Error::Io(std::io::Error::other(
            "connection reset"
        ))));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}
