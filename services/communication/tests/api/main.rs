//! Integration tests of communication against a real daprd and a
//! PostgreSQL database of its own.

mod health;
