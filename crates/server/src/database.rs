//! Telling a database that is away from a query that failed: the first is a
//! 503 the client may retry ([`Problem::database_unavailable`]), the second
//! a 500.

use platform_problem::Problem;

/// Whether `error` means the database could not be reached (no connection
/// in time, a broken connection, a closed pool, or the server saying it
/// cannot serve now) rather than that the statement failed.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(e) => {
            server_cannot_serve(e.code().as_deref().unwrap_or_default(), e.message())
        }
        _ => false,
    }
}

/// SQLSTATEs of a server that cannot serve now (PostgreSQL, appendix A):
/// class 08 (connection exception); 57P01–57P03 and 57P05 (the session was
/// terminated by an administrator, a crash, a start-up or shutdown, or the
/// idle-session timeout); 53300 (too many connections); and 55000 when it
/// is "database … is not currently accepting connections" (`ALTER DATABASE
/// … ALLOW_CONNECTIONS false`; 55000 is otherwise a statement's error).
fn server_cannot_serve(code: &str, message: &str) -> bool {
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57P05" | "53300")
        || (code == "55000" && message.contains("not currently accepting connections"))
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
    fn a_server_that_cannot_serve_now_is_unavailable_and_a_failed_statement_is_not() {
        use super::server_cannot_serve;
        for code in [
            "08006", "08001", "57P01", "57P02", "57P03", "57P05", "53300",
        ] {
            assert!(server_cannot_serve(code, "any"), "{code}");
        }
        assert!(server_cannot_serve(
            "55000",
            "database \"auth\" is not currently accepting connections"
        ));
        for (code, message) in [
            ("55000", "lock is not available"),
            ("23505", "duplicate key value violates unique constraint"),
            ("40001", "could not serialize access"),
            ("42P01", "relation does not exist"),
            ("", ""),
        ] {
            assert!(!server_cannot_serve(code, message), "{code}");
        }
    }

    #[test]
    fn only_an_outage_is_a_503() {
        assert_eq!(problem(&sqlx::Error::PoolTimedOut).status, 503);
        assert_eq!(problem(&sqlx::Error::RowNotFound).status, 500);
    }
}
