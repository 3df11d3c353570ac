//! Integration tests of bookkeeping against a real daprd, a Redis and a
//! PostgreSQL database of their own.

mod events;
mod health;
mod helpers;
