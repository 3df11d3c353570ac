//! `sqlx::migrate!` embeds `migrations/` at compile time, but the compiler
//! does not report those files to Cargo: without this, a new migration
//! leaves an old binary in place, which then refuses a database that already
//! has the migration ("previously applied but is missing").

fn main() {
    println!("cargo::rerun-if-changed=migrations");
}
