//! Checking that a consumer's migrated table is the one the kit's SQL
//! creates (the kit's tables are copied into each service's migrations).

use sqlx::{Acquire, PgConnection};

/// Why a table check failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the table is not the one of the kit's migration: {0}")]
    Differs(String),
}

/// One column as the catalogue describes it: name, type, nullable, default.
type Column = (String, String, String, Option<String>);

/// Compares `table` as the connection sees it (its `search_path`) with the
/// one `migration` creates: the same columns (type, nullability, default)
/// and primary key; extra columns are allowed if nullable or defaulted.
/// Builds the expected table in a scratch schema inside a transaction that
/// is rolled back, so the database is left as it was.
pub(crate) async fn check(
    conn: &mut PgConnection,
    table: &str,
    migration: &str,
) -> Result<(), TableError> {
    const SCRATCH: &str = "platform_consumer_expected";
    let mut tx = conn.begin().await?;
    let schema: Option<String> = sqlx::query_scalar(
        "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = to_regclass($1)",
    )
    .bind(table)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(schema) = schema else {
        return Err(TableError::Differs(format!("there is no table {table}")));
    };
    sqlx::raw_sql(&format!(
        "CREATE SCHEMA {SCRATCH}; SET LOCAL search_path = {SCRATCH}"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(migration).execute(&mut *tx).await?;
    let expected = describe(&mut tx, SCRATCH, table).await?;
    let found = describe(&mut tx, &schema, table).await?;
    tx.rollback().await?;
    let differences = differences(&expected, &found);
    if differences.is_empty() {
        Ok(())
    } else {
        Err(TableError::Differs(differences.join("; ")))
    }
}

/// The columns and the primary key of `<schema>.<table>`.
async fn describe(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<(Vec<Column>, Vec<String>), sqlx::Error> {
    let columns = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
           FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2
          ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let key = sqlx::query_scalar(
        "SELECT k.column_name::text
           FROM information_schema.table_constraints t
           JOIN information_schema.key_column_usage k
             USING (constraint_catalog, constraint_schema, constraint_name)
          WHERE t.table_schema = $1 AND t.table_name = $2
            AND t.constraint_type = 'PRIMARY KEY'
          ORDER BY k.ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok((columns, key))
}
fn differences(
    (expected, expected_key): &(Vec<Column>, Vec<String>),
    (found, found_key): &(Vec<Column>, Vec<String>),
) -> Vec<String> {
    let mut differences = Vec::new();
    for column in expected {
        match found.iter().find(|f| f.0 == column.0) {
            None => differences.push(format!("column {} is missing", column.0)),
            Some(f) if f != column => differences.push(format!(
                "column {} is {f:?}, expected {column:?} (name, type, nullable, default)",
                column.0
            )),
            Some(_) => {}
        }
    }
    for (name, _, nullable, default) in found {
        let known = expected.iter().any(|e| &e.0 == name);
        if !known && nullable == "NO" && default.is_none() {
            differences.push(format!(
                "column {name} is NOT NULL without a default: claims cannot fill it"
            ));
        }
    }
    if expected_key != found_key {
        differences.push(format!(
            "the primary key is {found_key:?}, expected {expected_key:?}"
        ));
    }
    differences
}
